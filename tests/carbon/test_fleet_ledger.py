"""The fleet ledger's arithmetic on small numbers worked out by hand."""

from __future__ import annotations

import pytest

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.fleet_ledger import (
    NO_LEDGER_REASON,
    NO_SCRATCH_REASON,
    FleetDevices,
    Specialization,
    SupernetCosts,
    fleet_ledger,
)
from ofa_fleet.errors import NotFoundError
from ofa_fleet.v1 import common_pb2

VERSION = "0123456789abcdef"
SCRATCH = EnergyCost(300.0, 3000.0, 30.0)


def costs(cpu: float) -> EnergyCost:
    """A cost whose joules are 10x and grams 0.1x its CPU seconds, to keep sums legible."""
    return EnergyCost(cpu, cpu * 10, cpu * 0.1)


def supernet(scratch: EnergyCost | None = SCRATCH) -> SupernetCosts:
    # training 100 + 50, predictor fit 10: fixed = 160 CPU seconds.
    return SupernetCosts(VERSION, (("full", costs(100)), ("kernel", costs(50))), costs(10), scratch)


SPECIALIZATIONS = [
    Specialization("p1", "a" * 64, VERSION, costs(5)),
    Specialization("p1", "b" * 64, VERSION, costs(3)),  # a re-specialization: counts for p1
    Specialization("p2", "c" * 64, VERSION, costs(4)),
    Specialization("p3", "d" * 64, "an-older-supernet", costs(1000)),  # not this supernet
]
FLEETS = [
    FleetDevices("f1", "p1", devices=3, served_devices=2, profiling=costs(1)),
    FleetDevices("f2", "p1", devices=2, served_devices=2, profiling=costs(1)),
    FleetDevices("f3", "p2", devices=4, served_devices=4, profiling=costs(2)),
    FleetDevices("f4", "p3", devices=1, served_devices=0, profiling=costs(0.5)),
]


def close(actual: EnergyCost | None, cpu: float) -> bool:
    assert actual is not None
    expected = costs(cpu)
    return (
        actual.cpu_seconds == pytest.approx(expected.cpu_seconds)
        and actual.joules == pytest.approx(expected.joules)
        and actual.co2e_grams == pytest.approx(expected.co2e_grams)
    )


def test_totals_shares_and_counterfactual():
    ledger = fleet_ledger(supernet(), SPECIALIZATIONS, FLEETS)
    assert [phase for phase, _ in ledger.training] == ["full", "kernel"]
    assert close(ledger.training_total, 150)
    assert close(ledger.predictor_fit, 10)
    assert close(ledger.fixed, 160)
    assert ledger.specialized_profiles == 2  # p3's only model is from another supernet
    assert close(ledger.specialization_total, 12)
    assert close(ledger.device_profiling_total, 4.5)
    assert close(ledger.once_for_all_total, 176.5)
    assert (ledger.devices, ledger.served_devices) == (10, 8)
    assert close(ledger.per_served_device, 176.5 / 8)

    p1, p2 = ledger.profiles
    assert (p1.profile_name, p1.specializations, p1.served_devices) == ("p1", 2, 4)
    assert close(p1.specialization, 8) and close(p1.amortized, 80 + 8)
    assert (p2.profile_name, p2.specializations, p2.served_devices) == ("p2", 1, 4)
    assert close(p2.amortized, 80 + 4)

    # K scratch networks plus the same device profiling: 2 x 300 + 4.5.
    assert ledger.scratch_per_network == SCRATCH
    assert close(ledger.counterfactual, 604.5)
    assert ledger.ratio is not None
    assert ledger.ratio.cpu_seconds == pytest.approx(604.5 / 176.5)
    assert ledger.ratio.joules == pytest.approx(6045 / 1765)
    assert ledger.ratio.co2e_grams == pytest.approx(60.45 / 17.65)
    # fixed / (scratch - mean specialization per profile) = 160 / (300 - 6).
    assert ledger.break_even_profiles is not None
    assert ledger.break_even_profiles.cpu_seconds == pytest.approx(160 / 294)
    assert ledger.break_even_profiles.joules == pytest.approx(1600 / 2940)
    assert ledger.counterfactual_unavailable_reason == ""
    assert ledger.training_unavailable_reason == ""


def test_fleets_share_their_profile_by_served_devices():
    fleets = {f.fleet_name: f for f in fleet_ledger(supernet(), SPECIALIZATIONS, FLEETS).fleets}
    f1 = fleets["f1"]  # half of p1's four served devices
    assert close(f1.profile_amortized, 88)
    assert close(f1.attributed, 88 / 2 + 1)
    assert close(f1.per_served_device, (44 + 1) / 2)
    assert close(f1.counterfactual, 300 / 2 + 1)
    assert f1.ratio is not None and f1.ratio.joules == pytest.approx(151 / 45)
    f3 = fleets["f3"]  # all of p2
    assert close(f3.attributed, 84 + 2)
    assert close(f3.per_served_device, 86 / 4)
    # p3 has no model from this supernet: only its devices' profiling, nothing served.
    f4 = fleets["f4"]
    assert f4.profile_amortized is None and f4.per_served_device is None
    assert close(f4.attributed, 0.5) and close(f4.counterfactual, 0.5)
    # Every served profile is attributed in full, so the fleets' shares add up to the
    # once-for-all total: every joule counted exactly once.
    total_attributed = sum(f.attributed.joules for f in fleets.values())
    assert total_attributed == pytest.approx(1765)


def test_a_fleet_filter_keeps_that_fleet_and_its_profile_and_the_whole_totals():
    whole = fleet_ledger(supernet(), SPECIALIZATIONS, FLEETS)
    narrowed = whole.only_fleet("f2")
    assert [f.fleet_name for f in narrowed.fleets] == ["f2"]
    assert [p.profile_name for p in narrowed.profiles] == ["p1"]
    assert narrowed.once_for_all_total == whole.once_for_all_total
    assert close(narrowed.fleets[0].per_served_device, (44 + 1) / 2)
    with pytest.raises(NotFoundError, match="no fleet 'nope'"):
        whole.only_fleet("nope")


def test_without_a_scratch_reference_the_counterfactual_is_unset_with_a_reason():
    ledger = fleet_ledger(supernet(scratch=None), SPECIALIZATIONS, FLEETS)
    assert ledger.counterfactual is None and ledger.ratio is None
    assert ledger.scratch_per_network is None and ledger.break_even_profiles is None
    assert ledger.counterfactual_unavailable_reason == NO_SCRATCH_REASON
    assert all(f.counterfactual is None and f.ratio is None for f in ledger.fleets)
    assert ledger.to_dict()["counterfactual"] is None
    assert close(ledger.once_for_all_total, 176.5)  # the measured side stands


def test_break_even_is_none_in_a_unit_where_scratch_costs_no_more_than_a_specialization():
    # Mean specialization per profile is 6 CPU s, 60 J: scratch at 7 CPU s but 50 J.
    scratch = EnergyCost(7.0, 50.0, 0.6)
    ledger = fleet_ledger(supernet(scratch), SPECIALIZATIONS, FLEETS)
    assert ledger.break_even_profiles is not None
    assert ledger.break_even_profiles.cpu_seconds == pytest.approx(160 / 1)
    assert ledger.break_even_profiles.joules is None
    assert ledger.break_even_profiles.co2e_grams is None  # 0.6 - 0.6 saves nothing


def test_nothing_specialized_yet():
    ledger = fleet_ledger(supernet(), [], FLEETS[:1])
    assert ledger.specialized_profiles == 0 and ledger.profiles == ()
    assert ledger.break_even_profiles is None  # no mean specialization to speak of
    assert close(ledger.counterfactual, 1)  # no profile to train for; profiling stands
    assert close(ledger.fleets[0].attributed, 1)


def test_from_the_supernet_ledger_message():
    message = common_pb2.SupernetLedger(
        supernet_version=VERSION,
        activities=[
            common_pb2.ActivityCost(
                activity="training",
                detail="full",
                cost=common_pb2.EnergyCost(cpu_seconds=100, energy_joules=1000, co2e_grams=10),
            ),
            common_pb2.ActivityCost(
                activity="training",
                detail="kernel",
                cost=common_pb2.EnergyCost(cpu_seconds=50, energy_joules=500, co2e_grams=5),
            ),
            common_pb2.ActivityCost(
                activity="predictor_fit",
                cost=common_pb2.EnergyCost(cpu_seconds=10, energy_joules=100, co2e_grams=1),
            ),
        ],
    )
    parsed = SupernetCosts.from_proto(VERSION, message)
    assert parsed.training == (("full", costs(100)), ("kernel", costs(50)))
    assert parsed.predictor_fit == costs(10) and parsed.scratch_per_network is None
    message.scratch.cost_per_network.CopyFrom(
        common_pb2.EnergyCost(cpu_seconds=300, energy_joules=3000, co2e_grams=30)
    )
    assert SupernetCosts.from_proto(VERSION, message).scratch_per_network == SCRATCH
    missing = fleet_ledger(SupernetCosts.from_proto(VERSION, None), SPECIALIZATIONS, FLEETS)
    assert missing.training_unavailable_reason == NO_LEDGER_REASON
    assert missing.fixed == EnergyCost()
    # A ledger with the predictor fit but no training phases: training was not metered.
    del message.activities[:2]
    unmetered = SupernetCosts.from_proto(VERSION, message)
    assert not unmetered.has_ledger and unmetered.predictor_fit == costs(10)
