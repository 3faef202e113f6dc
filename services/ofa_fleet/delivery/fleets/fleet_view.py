"""A fleet as delivery works with it: the registry's record, keyed by ids.

The registry's API names a fleet `fleets/{fleet}` and its profile `profiles/{profile}`;
delivery's own tables, caches, metrics and rollouts are keyed by the ids inside. The
names are read here, once, where a record arrives from the registry, so nothing further
in delivery parses them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ofa_fleet.contract.resource_names import parse_fleet_name, parse_profile_name
from ofa_fleet.v1 import registry_pb2


@dataclass(frozen=True)
class FleetView:
    name: str  # the fleet's id
    profile: str  # its profile's id
    rollout: registry_pb2.RolloutPolicy
    revision: int


def fleet_view(fleet: registry_pb2.Fleet) -> FleetView:
    return FleetView(
        name=parse_fleet_name(fleet.name, "fleet.name"),
        profile=parse_profile_name(fleet.profile, "fleet.profile"),
        rollout=fleet.rollout,
        revision=fleet.revision,
    )
