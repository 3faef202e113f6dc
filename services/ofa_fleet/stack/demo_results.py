"""What the demo found, typed: per profile, its model, its devices and its carbon share.

The demo reads these back from delivery (the signed manifest's figures, the carbon
ledger) and from its simulated devices. The display and ``--json`` both read this one
shape, so a figure renamed or missing is a type error here, not a `KeyError` at the end
of a long run. `DemoResult.to_json` keeps the document `ofa-fleet demo --json` has always
printed.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.fleet.summary import SimulationSummary
from ofa_fleet.hardware.profile_proto import budget_ms
from ofa_fleet.stack.demo_fleets import DemoFleet
from ofa_fleet.v1 import delivery_pb2


@dataclass(frozen=True)
class ProfileModel:
    """The model delivery gave a profile, with the figures its signed manifest carries."""

    arch: str
    sha256: str
    supernet_version: str
    model_bytes: int
    macs: int
    predicted_latency_ms: float
    latency_source: str
    within_budget: bool
    top1: float
    predicted_top1: float
    devices_on_current_model: int


@dataclass(frozen=True)
class ProfileCarbon:
    """The profile's amortized share of training once plus its own search, and how many
    times less that is than training one network for it from scratch (None: no
    scratch reference was measured, or no share yet)."""

    energy_joules: float | None = None
    co2e_grams: float | None = None
    scratch_to_ofa_ratio: float | None = None


@dataclass(frozen=True)
class ProfileResult:
    profile: str
    fleet: str
    devices: int
    served: int
    verified: int
    latency_budget_ms: float
    measured_latency_ms: float | None
    model: ProfileModel | None  # None: no model yet, and `error` says why
    error: str = ""
    carbon: ProfileCarbon = field(default_factory=ProfileCarbon)

    def to_json(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "profile": self.profile,
            "fleet": self.fleet,
            "devices": self.devices,
            "served": self.served,
            "verified": self.verified,
            "latency_budget_ms": self.latency_budget_ms,
            "measured_latency_ms": self.measured_latency_ms,
        }
        model = asdict(self.model) if self.model else {"arch": "", "error": self.error}
        return {**row, **model, **asdict(self.carbon)}


@dataclass(frozen=True)
class CarbonSummary:
    """The fleet-wide figures of `ofa-fleet carbon report`, for the demo's last lines."""

    training_joules: float
    fixed_joules: float
    once_for_all_joules: float
    once_for_all_co2e_grams: float
    per_served_device_joules: float | None
    scratch_per_network_joules: float | None
    counterfactual_joules: float | None
    ratio: float | None
    break_even_profiles: float | None
    unavailable_reason: str


@dataclass(frozen=True)
class DemoResult:
    devices: int
    served: int
    verified: int
    enrolled: int
    bytes_downloaded: int
    seconds_to_serve_all: float
    errors: dict[str, int]
    profiles: list[ProfileResult]
    carbon: CarbonSummary
    registry: str
    delivery: str
    seconds_to_start: float = 0.0
    seconds: float = 0.0

    @property
    def missing(self) -> int:
        """Devices that were not served."""
        return self.devices - self.served

    def to_json(self) -> dict[str, Any]:
        return {
            **{k: v for k, v in asdict(self).items() if k not in ("profiles", "carbon")},
            "profiles": [p.to_json() for p in self.profiles],
            "carbon": asdict(self.carbon),
        }


def profile_result(
    fleet: DemoFleet,
    models: delivery_pb2.GetProfileModelsResponse,
    summary: SimulationSummary | None,
    ledger: delivery_pb2.GetCarbonLedgerResponse,
) -> ProfileResult:
    outcomes = summary.outcomes if summary else []
    served = [o for o in outcomes if o.ok]
    budget = budget_ms(fleet.profile.spec.constraints)
    model = None
    if models.HasField("current"):
        manifest = Manifest.from_bytes(models.current.canonical_manifest)
        figures = manifest.model_figures()
        predicted = figures.predicted_latency_ms or 0.0
        model = ProfileModel(
            arch=manifest.arch,
            sha256=manifest.sha256,
            supernet_version=manifest.supernet_version,
            model_bytes=manifest.size_bytes,
            macs=figures.macs or 0,
            predicted_latency_ms=round(predicted, 4),
            latency_source=figures.latency_source,
            within_budget=predicted <= budget,
            top1=round(figures.measured_top1 or 0.0, 4),
            predicted_top1=round(figures.predicted_top1 or 0.0, 4),
            devices_on_current_model=sum(1 for o in served if o.model_sha256 == manifest.sha256),
        )
    return ProfileResult(
        profile=fleet.profile_name,
        fleet=fleet.name,
        devices=len(outcomes),
        served=len(served),
        verified=sum(1 for o in outcomes if o.verified),
        latency_budget_ms=budget,
        measured_latency_ms=_median([o.latency_ms for o in served]),
        model=model,
        error="" if model else (models.last_error or "no model yet"),
        carbon=profile_carbon(fleet.profile_name, ledger),
    )


def profile_carbon(profile: str, ledger: delivery_pb2.GetCarbonLedgerResponse) -> ProfileCarbon:
    found = next((p for p in ledger.profiles if p.profile_name == profile), None)
    if found is None:
        return ProfileCarbon()
    amortized = found.amortized
    scratch = ledger.scratch_per_network.energy_joules if ledger.HasField("counterfactual") else 0
    return ProfileCarbon(
        energy_joules=round(amortized.energy_joules, 1),
        co2e_grams=round(amortized.co2e_grams, 4),
        scratch_to_ofa_ratio=round(scratch / amortized.energy_joules, 4)
        if scratch and amortized.energy_joules
        else None,
    )


def carbon_summary(ledger: delivery_pb2.GetCarbonLedgerResponse) -> CarbonSummary:
    ratio = ledger.ratio.energy_joules if ledger.ratio.HasField("energy_joules") else None
    even = ledger.break_even_profiles
    counterfactual = ledger.HasField("counterfactual")
    return CarbonSummary(
        training_joules=round(ledger.training_total.energy_joules, 1),
        fixed_joules=round(ledger.fixed.energy_joules, 1),
        once_for_all_joules=round(ledger.once_for_all_total.energy_joules, 1),
        once_for_all_co2e_grams=round(ledger.once_for_all_total.co2e_grams, 4),
        per_served_device_joules=round(ledger.per_served_device.energy_joules, 1)
        if ledger.HasField("per_served_device")
        else None,
        scratch_per_network_joules=round(ledger.scratch_per_network.energy_joules, 1)
        if counterfactual
        else None,
        counterfactual_joules=round(ledger.counterfactual.energy_joules, 1)
        if counterfactual
        else None,
        ratio=None if ratio is None else round(ratio, 3),
        break_even_profiles=round(even.energy_joules, 2)
        if ledger.HasField("break_even_profiles") and even.HasField("energy_joules")
        else None,
        unavailable_reason=ledger.counterfactual_unavailable_reason,
    )


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 4) if values else None
