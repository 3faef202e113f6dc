"""The fleet's carbon ledger: what training once cost, shared out, against training per profile.

Pure arithmetic over plain inputs, so every figure the operators' report shows can be
checked by hand. The inputs are the supernet's own ledger (training per phase, the
predictor fit, the scratch reference), the specializations made from it, and each fleet's
devices (how many, how many are served, what their on-boot profiling drew).

- *fixed* = training + predictor fit: paid once, however many profiles follow.
- A profile's *amortized* cost = fixed / K + its own specializations, where K is the number
  of profiles specialized from this supernet (a re-specialization adds its cost to its
  profile, not to K).
- *Per served device* = (fixed + every specialization + every device's profiling) / the
  devices running their target model.
- The *counterfactual* trains one network per profile from scratch instead: K x the
  measured scratch cost per network, plus the same device profiling (devices profile
  their model either way). Without a measured scratch reference it is unset, with a
  reason, never zero: a zero would read as "training once saved nothing".
- *Break-even K* = fixed / (scratch per network - mean specialization per profile): past
  it, training once is cheaper. None in a unit where scratch costs no more than a
  specialization (it never breaks even there).

Each figure is kept in CPU seconds, joules and grams of CO2e alike; ratios are taken per
unit, since joules and grams come from different conversions of the same seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ofa_fleet.carbon import activities
from ofa_fleet.carbon.convert import cost_from_proto
from ofa_fleet.carbon.cost import ZERO, EnergyCost, total
from ofa_fleet.errors import NotFoundError
from ofa_fleet.v1 import common_pb2

NO_SCRATCH_REASON = (
    "no scratch reference was measured for this supernet: the counterfactual needs the "
    "measured cost of training one specialized network from scratch: run `ofa-fleet carbon "
    "reference --checkpoint CKPT` where search's checkpoint is, then restart search"
)
NO_LEDGER_REASON = (
    "the supernet's checkpoint carries no metered training (trained before metering): "
    "training is unknown and shown as zero"
)


@dataclass(frozen=True)
class SupernetCosts:
    """What one supernet cost to make ready for search, as its ledger says.

    ``training``: (phase, cost) in training order. ``scratch_per_network``: None when no
    reference was measured. ``has_ledger``: False when the checkpoint carries no metered
    training (no ledger, or one without training phases).
    """

    version: str
    training: tuple[tuple[str, EnergyCost], ...] = ()
    predictor_fit: EnergyCost = ZERO
    scratch_per_network: EnergyCost | None = None
    has_ledger: bool = True

    @classmethod
    def from_proto(cls, version: str, ledger: common_pb2.SupernetLedger | None) -> SupernetCosts:
        """From the ledger search reports (GetSupernet); None: the checkpoint has none."""
        if ledger is None:
            return cls(version, has_ledger=False)
        training = tuple(
            (a.detail, cost_from_proto(a.cost))
            for a in ledger.activities
            if a.activity == activities.TRAINING
        )
        fit = total(
            [
                cost_from_proto(a.cost)
                for a in ledger.activities
                if a.activity == activities.PREDICTOR_FIT
            ]
        )
        scratch = None
        if ledger.HasField("scratch") and ledger.scratch.HasField("cost_per_network"):
            scratch = cost_from_proto(ledger.scratch.cost_per_network)
        # A ledger without training phases comes from a checkpoint trained before metering.
        return cls(version, training, fit, scratch, has_ledger=bool(training))

    @property
    def training_total(self) -> EnergyCost:
        return total([cost for _, cost in self.training])

    @property
    def fixed(self) -> EnergyCost:
        return self.training_total + self.predictor_fit


@dataclass(frozen=True)
class Specialization:
    """One specialized model: its profile, its cost, and the supernet it came from."""

    profile_name: str
    sha256: str
    supernet_version: str
    cost: EnergyCost


@dataclass(frozen=True)
class FleetDevices:
    """One fleet's devices as the registry lists them."""

    fleet_name: str
    profile_name: str
    devices: int
    served_devices: int
    profiling: EnergyCost = ZERO


@dataclass(frozen=True)
class PerUnit:
    """A ratio per unit; None where it is undefined (division by zero, never reached)."""

    cpu_seconds: float | None
    joules: float | None
    co2e_grams: float | None

    @classmethod
    def divide(cls, numerator: EnergyCost, denominator: EnergyCost) -> PerUnit:
        return cls(
            _divide(numerator.cpu_seconds, denominator.cpu_seconds),
            _divide(numerator.joules, denominator.joules),
            _divide(numerator.co2e_grams, denominator.co2e_grams),
        )

    def to_dict(self) -> dict[str, float | None]:
        return {
            "cpu_seconds": self.cpu_seconds,
            "joules": self.joules,
            "co2e_grams": self.co2e_grams,
        }


@dataclass(frozen=True)
class ProfileShare:
    profile_name: str
    specializations: int
    specialization: EnergyCost
    amortized: EnergyCost
    served_devices: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile_name": self.profile_name,
            "specializations": self.specializations,
            "specialization": self.specialization.to_dict(),
            "amortized": self.amortized.to_dict(),
            "served_devices": self.served_devices,
        }


@dataclass(frozen=True)
class FleetShare:
    """One fleet's share: of its profile's amortized cost by its share of the profile's
    served devices, plus its own devices' profiling."""

    fleet_name: str
    profile_name: str
    devices: int
    served_devices: int
    device_profiling: EnergyCost
    profile_amortized: EnergyCost | None
    attributed: EnergyCost
    per_served_device: EnergyCost | None
    counterfactual: EnergyCost | None
    ratio: PerUnit | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "fleet_name": self.fleet_name,
            "profile_name": self.profile_name,
            "devices": self.devices,
            "served_devices": self.served_devices,
            "device_profiling": self.device_profiling.to_dict(),
            "profile_amortized": _maybe(self.profile_amortized),
            "attributed": self.attributed.to_dict(),
            "per_served_device": _maybe(self.per_served_device),
            "counterfactual": _maybe(self.counterfactual),
            "ratio": None if self.ratio is None else self.ratio.to_dict(),
        }


@dataclass(frozen=True)
class FleetLedger:
    supernet_version: str
    training: tuple[tuple[str, EnergyCost], ...]
    training_total: EnergyCost
    predictor_fit: EnergyCost
    fixed: EnergyCost
    specialized_profiles: int
    specialization_total: EnergyCost
    device_profiling_total: EnergyCost
    once_for_all_total: EnergyCost
    devices: int
    served_devices: int
    per_served_device: EnergyCost | None
    profiles: tuple[ProfileShare, ...]
    fleets: tuple[FleetShare, ...]
    scratch_per_network: EnergyCost | None
    counterfactual: EnergyCost | None
    ratio: PerUnit | None
    break_even_profiles: PerUnit | None
    counterfactual_unavailable_reason: str = ""
    training_unavailable_reason: str = ""

    def only_fleet(self, fleet_name: str) -> FleetLedger:
        """The same ledger narrowed to one fleet and its profile (totals stay whole)."""
        chosen = tuple(f for f in self.fleets if f.fleet_name == fleet_name)
        if not chosen:
            raise NotFoundError(f"no fleet {fleet_name!r}")
        profile = chosen[0].profile_name
        return replace(
            self,
            fleets=chosen,
            profiles=tuple(p for p in self.profiles if p.profile_name == profile),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "supernet_version": self.supernet_version,
            "training": [{"phase": phase, "cost": cost.to_dict()} for phase, cost in self.training],
            "training_total": self.training_total.to_dict(),
            "predictor_fit": self.predictor_fit.to_dict(),
            "fixed": self.fixed.to_dict(),
            "specialized_profiles": self.specialized_profiles,
            "specialization_total": self.specialization_total.to_dict(),
            "device_profiling_total": self.device_profiling_total.to_dict(),
            "once_for_all_total": self.once_for_all_total.to_dict(),
            "devices": self.devices,
            "served_devices": self.served_devices,
            "per_served_device": _maybe(self.per_served_device),
            "profiles": [p.to_dict() for p in self.profiles],
            "fleets": [f.to_dict() for f in self.fleets],
            "scratch_per_network": _maybe(self.scratch_per_network),
            "counterfactual": _maybe(self.counterfactual),
            "ratio": None if self.ratio is None else self.ratio.to_dict(),
            "break_even_profiles": (
                None if self.break_even_profiles is None else self.break_even_profiles.to_dict()
            ),
            "counterfactual_unavailable_reason": self.counterfactual_unavailable_reason,
            "training_unavailable_reason": self.training_unavailable_reason,
        }


def fleet_ledger(
    supernet: SupernetCosts,
    specializations: Iterable[Specialization],
    fleets: Iterable[FleetDevices],
) -> FleetLedger:
    """The whole ledger; specializations made from another supernet are left out."""
    mine = [s for s in specializations if s.supernet_version == supernet.version]
    by_profile: dict[str, list[EnergyCost]] = {}
    for spec in mine:
        by_profile.setdefault(spec.profile_name, []).append(spec.cost)
    k = len(by_profile)
    fixed = supernet.fixed
    fixed_share = fixed.scaled(1.0 / k) if k else ZERO
    fleet_list = sorted(fleets, key=lambda f: f.fleet_name)
    served_by_profile: dict[str, int] = {}
    for fleet in fleet_list:
        served_by_profile[fleet.profile_name] = (
            served_by_profile.get(fleet.profile_name, 0) + fleet.served_devices
        )
    profiles = tuple(
        ProfileShare(
            profile_name=name,
            specializations=len(costs),
            specialization=total(costs),
            amortized=fixed_share + total(costs),
            served_devices=served_by_profile.get(name, 0),
        )
        for name, costs in sorted(by_profile.items())
    )
    amortized = {p.profile_name: p.amortized for p in profiles}
    specialization_total = total([s.cost for s in mine])
    profiling_total = total([f.profiling for f in fleet_list])
    ofa_total = fixed + specialization_total + profiling_total
    served = sum(f.served_devices for f in fleet_list)
    scratch = supernet.scratch_per_network
    counterfactual = None if scratch is None else scratch.scaled(k) + profiling_total
    break_even = None
    if scratch is not None and k:
        mean_specialization = specialization_total.scaled(1.0 / k)
        break_even = _break_even(fixed, scratch, mean_specialization)
    return FleetLedger(
        supernet_version=supernet.version,
        training=supernet.training,
        training_total=supernet.training_total,
        predictor_fit=supernet.predictor_fit,
        fixed=fixed,
        specialized_profiles=k,
        specialization_total=specialization_total,
        device_profiling_total=profiling_total,
        once_for_all_total=ofa_total,
        devices=sum(f.devices for f in fleet_list),
        served_devices=served,
        per_served_device=ofa_total.scaled(1.0 / served) if served else None,
        profiles=profiles,
        fleets=tuple(
            _fleet_share(f, amortized.get(f.profile_name), served_by_profile, scratch)
            for f in fleet_list
        ),
        scratch_per_network=scratch,
        counterfactual=counterfactual,
        ratio=None if counterfactual is None else PerUnit.divide(counterfactual, ofa_total),
        break_even_profiles=break_even,
        counterfactual_unavailable_reason="" if scratch is not None else NO_SCRATCH_REASON,
        training_unavailable_reason="" if supernet.has_ledger else NO_LEDGER_REASON,
    )


def _fleet_share(
    fleet: FleetDevices,
    profile_amortized: EnergyCost | None,
    served_by_profile: dict[str, int],
    scratch: EnergyCost | None,
) -> FleetShare:
    profile_served = served_by_profile.get(fleet.profile_name, 0)
    share = fleet.served_devices / profile_served if profile_served else 0.0
    attributed = fleet.profiling
    if profile_amortized is not None:
        attributed = profile_amortized.scaled(share) + fleet.profiling
    counterfactual = None
    if scratch is not None:
        # The profile's one scratch network, only if the profile was specialized at all
        # (K counts specialized profiles), split as the amortized cost is.
        network = scratch.scaled(share) if profile_amortized is not None else ZERO
        counterfactual = network + fleet.profiling
    return FleetShare(
        fleet_name=fleet.fleet_name,
        profile_name=fleet.profile_name,
        devices=fleet.devices,
        served_devices=fleet.served_devices,
        device_profiling=fleet.profiling,
        profile_amortized=profile_amortized,
        attributed=attributed,
        per_served_device=(
            attributed.scaled(1.0 / fleet.served_devices) if fleet.served_devices else None
        ),
        counterfactual=counterfactual,
        ratio=None if counterfactual is None else PerUnit.divide(counterfactual, attributed),
    )


def _break_even(fixed: EnergyCost, scratch: EnergyCost, mean: EnergyCost) -> PerUnit:
    def unit(f: float, s: float, m: float) -> float | None:
        saving = s - m
        return f / saving if saving > 0 else None

    return PerUnit(
        unit(fixed.cpu_seconds, scratch.cpu_seconds, mean.cpu_seconds),
        unit(fixed.joules, scratch.joules, mean.joules),
        unit(fixed.co2e_grams, scratch.co2e_grams, mean.co2e_grams),
    )


def _divide(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def _maybe(cost: EnergyCost | None) -> dict[str, float] | None:
    return None if cost is None else cost.to_dict()
