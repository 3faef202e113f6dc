"""The names of metered activities, shared by the ledger, its RPCs and its metrics."""

from __future__ import annotations

TRAINING = "training"
PREDICTOR_FIT = "predictor_fit"
SPECIALIZATION = "specialization"
DEVICE_PROFILING = "device_profiling"
# Training one specialized network from scratch to the accuracy OFA reached for it:
# the measured unit of the counterfactual, not work the fleet needs.
SCRATCH_REFERENCE = "scratch_reference"

FLEET_ACTIVITIES = (TRAINING, PREDICTOR_FIT, SPECIALIZATION, DEVICE_PROFILING)
