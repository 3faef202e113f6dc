"""The supernet ledger: its totals, its protobuf and JSON forms, and where it is read from."""

from __future__ import annotations

import json

import pytest

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.carbon.scratch_reference import ScratchReference
from ofa_fleet.carbon.supernet_ledger import SupernetLedger
from ofa_fleet.v1 import common_pb2

MODEL = {
    "power": {"watts_per_core": 42.5, "source": "tdp-default"},
    "grid": {"g_per_kwh": 480.0, "region": "world"},
}
SCRATCH = ScratchReference(
    archs=("r32_a", "r28_b"),
    target_top1=0.97,
    reached_top1=0.975,
    cost_per_network=EnergyCost(20.0, 850.0, 0.113),
    epochs=4.5,
    supernet_version="abc",
    energy_model=MODEL,
)


def ledger(**changes) -> SupernetLedger:
    values = {
        "supernet_version": "abc",
        "training": {
            "full": EnergyCost(100.0, 4250.0, 0.5667),
            "kernel": EnergyCost(50.0, 2125.0, 0.2833),
        },
        "predictor_fit": EnergyCost(30.0, 1275.0, 0.17),
        "scratch": SCRATCH,
        "energy_model": MODEL,
    }
    return SupernetLedger(**{**values, **changes})


def test_totals():
    full = ledger()
    assert full.training_total == EnergyCost(150.0, 6375.0, 0.85)
    assert full.fixed_total.cpu_seconds == pytest.approx(180.0)
    assert full.fixed_total.joules == pytest.approx(7650.0)
    bare = ledger(training={}, predictor_fit=None, scratch=None)
    assert bare.fixed_total == EnergyCost() and not bare.training_measured


def test_proto_round_trip_keeps_phases_in_order():
    original = ledger()
    message = original.to_proto()
    assert [(a.activity, a.detail) for a in message.activities] == [
        ("training", "full"),
        ("training", "kernel"),
        ("predictor_fit", ""),
    ]
    assert message.energy_model.power_source == "tdp-default"
    wire = common_pb2.SupernetLedger.FromString(message.SerializeToString())
    back = SupernetLedger.from_proto(wire)
    assert list(back.training) == ["full", "kernel"]
    assert back.training == original.training
    assert back.predictor_fit == original.predictor_fit
    assert back.energy_model == MODEL
    assert back.scratch is not None
    assert back.scratch.archs == SCRATCH.archs
    assert back.scratch.cost_per_network == SCRATCH.cost_per_network
    assert (back.scratch.target_top1, back.scratch.epochs) == (0.97, 4.5)
    assert back.scratch.supernet_version == "abc"


def test_absent_parts_stay_absent_over_the_wire():
    message = ledger(predictor_fit=None, scratch=None, energy_model={}).to_proto()
    assert not message.HasField("scratch")
    back = SupernetLedger.from_proto(message)
    assert back.predictor_fit is None and back.scratch is None and back.energy_model == {}


def test_dict_is_json():
    data = json.loads(json.dumps(ledger().to_dict()))
    assert data["training"]["full"]["cpu_seconds"] == 100.0
    assert data["fixed_total"]["cpu_seconds"] == pytest.approx(180.0)
    assert data["scratch"]["archs"] == ["r32_a", "r28_b"]
    assert (
        json.loads(json.dumps(ledger(predictor_fit=None, scratch=None).to_dict()))["predictor_fit"]
        is None
    )
