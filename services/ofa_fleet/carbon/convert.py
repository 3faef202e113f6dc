"""`EnergyCost` to and from its protobuf message."""

from __future__ import annotations

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.v1 import common_pb2


def cost_to_proto(cost: EnergyCost) -> common_pb2.EnergyCost:
    return common_pb2.EnergyCost(
        cpu_seconds=cost.cpu_seconds, energy_joules=cost.joules, co2e_grams=cost.co2e_grams
    )


def cost_from_proto(message: common_pb2.EnergyCost) -> EnergyCost:
    return EnergyCost(message.cpu_seconds, message.energy_joules, message.co2e_grams)
