"""The supernet's side of the carbon ledger: what it cost to make ready for search.

Training (per phase) and the accuracy-predictor fit are paid once per supernet, however
many profiles and devices are then served from it: the fixed cost the ledger amortizes.
The scratch reference is the measured unit of the counterfactual (one specialized network
trained from scratch to the same accuracy). Each part is read from where it is kept with
the records it describes: the checkpoint's figures, the predictor file beside it
(``CKPT.predictor``) and ``CKPT.scratch.json``; a part measured for another supernet
version, or never measured, is absent (None / empty), never zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ofa_fleet.carbon.activities import PREDICTOR_FIT, TRAINING
from ofa_fleet.carbon.convert import cost_from_proto, cost_to_proto
from ofa_fleet.carbon.cost import ZERO, EnergyCost, total
from ofa_fleet.carbon.scratch_reference import ScratchReference
from ofa_fleet.v1 import common_pb2


@dataclass(frozen=True)
class SupernetLedger:
    """One supernet's fixed cost and its scratch reference.

    ``training`` maps phase name to cost in phase order; empty for a checkpoint trained
    before metering. ``energy_model`` is `EnergyModel.describe()` of the training run
    (else of the predictor fit, else of the reference): how CPU seconds became joules
    and grams.
    """

    supernet_version: str
    training: dict[str, EnergyCost] = field(default_factory=dict)
    predictor_fit: EnergyCost | None = None
    scratch: ScratchReference | None = None
    energy_model: dict[str, Any] = field(default_factory=dict)

    @property
    def training_total(self) -> EnergyCost:
        return total(list(self.training.values()))

    @property
    def fixed_total(self) -> EnergyCost:
        """Everything paid once for this supernet: training and the predictor fit."""
        return self.training_total + (self.predictor_fit or ZERO)

    @property
    def training_measured(self) -> bool:
        return bool(self.training)

    def to_proto(self) -> common_pb2.SupernetLedger:
        activities = [
            common_pb2.ActivityCost(activity=TRAINING, detail=phase, cost=cost_to_proto(cost))
            for phase, cost in self.training.items()
        ]
        if self.predictor_fit is not None:
            activities.append(
                common_pb2.ActivityCost(
                    activity=PREDICTOR_FIT, cost=cost_to_proto(self.predictor_fit)
                )
            )
        message = common_pb2.SupernetLedger(
            supernet_version=self.supernet_version,
            activities=activities,
            energy_model=energy_model_to_proto(self.energy_model),
        )
        if self.scratch is not None:
            message.scratch.CopyFrom(scratch_to_proto(self.scratch))
        return message

    @classmethod
    def from_proto(cls, message: common_pb2.SupernetLedger) -> SupernetLedger:
        training: dict[str, EnergyCost] = {}
        predictor_fit: EnergyCost | None = None
        for activity in message.activities:
            if activity.activity == TRAINING:
                training[activity.detail] = training.get(activity.detail, ZERO) + cost_from_proto(
                    activity.cost
                )
            elif activity.activity == PREDICTOR_FIT:
                predictor_fit = (predictor_fit or ZERO) + cost_from_proto(activity.cost)
        model = energy_model_from_proto(message.energy_model)
        scratch = None
        if message.HasField("scratch"):
            scratch = scratch_from_proto(message.scratch, message.supernet_version, model)
        return cls(message.supernet_version, training, predictor_fit, scratch, model)

    def to_dict(self) -> dict[str, Any]:
        """For JSON (the CLI's ``--json``, reports): costs as `EnergyCost.to_dict()`."""
        return {
            "supernet_version": self.supernet_version,
            "training": {phase: cost.to_dict() for phase, cost in self.training.items()},
            "training_total": self.training_total.to_dict(),
            "predictor_fit": self.predictor_fit.to_dict() if self.predictor_fit else None,
            "fixed_total": self.fixed_total.to_dict(),
            "scratch": self.scratch.to_dict() if self.scratch is not None else None,
            "energy_model": dict(self.energy_model),
        }


def energy_model_to_proto(model: dict[str, Any]) -> common_pb2.EnergyModel:
    power, grid = model.get("power") or {}, model.get("grid") or {}
    return common_pb2.EnergyModel(
        power_source=str(power.get("source", "")),
        watts_per_core=float(power.get("watts_per_core", 0.0)),
        grid_g_per_kwh=float(grid.get("g_per_kwh", 0.0)),
        grid_region=str(grid.get("region", "")),
    )


def energy_model_from_proto(message: common_pb2.EnergyModel) -> dict[str, Any]:
    """The `EnergyModel.describe()` shape; empty for an unset message."""
    if not message.power_source and not message.grid_region:
        return {}
    return {
        "power": {"watts_per_core": message.watts_per_core, "source": message.power_source},
        "grid": {"g_per_kwh": message.grid_g_per_kwh, "region": message.grid_region},
    }


def scratch_to_proto(reference: ScratchReference) -> common_pb2.ScratchReference:
    return common_pb2.ScratchReference(
        archs=list(reference.archs),
        target_top1=reference.target_top1,
        reached_top1=reference.reached_top1,
        cost_per_network=cost_to_proto(reference.cost_per_network),
        epochs=reference.epochs,
    )


def scratch_from_proto(
    message: common_pb2.ScratchReference, supernet_version: str, model: dict[str, Any]
) -> ScratchReference:
    """The message carries the means only; the per-network records stay in the sidecar."""
    return ScratchReference(
        archs=tuple(message.archs),
        target_top1=message.target_top1,
        reached_top1=message.reached_top1,
        cost_per_network=cost_from_proto(message.cost_per_network),
        epochs=message.epochs,
        supernet_version=supernet_version,
        energy_model=dict(model),
    )
