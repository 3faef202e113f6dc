"""GetCarbonLedger's inputs gathered, and its answer built from `carbon.fleet_ledger`.

The supernet and the specializations come from delivery's database (so the report stands
while search is down); each fleet's devices, which of them run their target model, and
what their on-boot profiling drew come from the registry's device listing, the same one
the fleet monitor reads.
"""

from __future__ import annotations

import asyncio

from ofa_fleet.carbon.convert import cost_to_proto
from ofa_fleet.carbon.cost import EnergyCost, total
from ofa_fleet.carbon.fleet_ledger import (
    FleetDevices,
    FleetLedger,
    FleetShare,
    PerUnit,
    ProfileShare,
    SupernetCosts,
    fleet_ledger,
)
from ofa_fleet.contract.fields import check_name
from ofa_fleet.delivery.fleets.device_reports import DeviceReports
from ofa_fleet.delivery.fleets.fleet_view import FleetView, fleet_view
from ofa_fleet.delivery.fleets.targets import fleet_target
from ofa_fleet.delivery.rollout import DeviceReport
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.rollout_store import RolloutStore
from ofa_fleet.delivery.store.supernet_ledgers import StoredSupernet, SupernetLedgers
from ofa_fleet.errors import FailedPreconditionError, NotFoundError, OfaFleetError
from ofa_fleet.serving.registry_client import RegistryClient
from ofa_fleet.storage.pages import check_page_size, decode_page_token, encode_page_token
from ofa_fleet.v1 import common_pb2, delivery_pb2


class CarbonReport:
    def __init__(
        self,
        store: ModelStore,
        ledgers: SupernetLedgers,
        registry: RegistryClient,
        rollouts: RolloutStore,
    ) -> None:
        self.store = store
        self.ledgers = ledgers
        self.registry = registry
        self.reports = DeviceReports(registry)
        self.rollouts = rollouts

    async def answer(
        self, fleet: str = "", page_size: int = 0, page_token: str = ""
    ) -> delivery_pb2.GetCarbonLedgerResponse:
        """One page of the ledger of the current supernet, whole or narrowed to ``fleet``."""
        if fleet:
            check_name(fleet, "fleet")
        size = check_page_size(page_size)
        stored = await asyncio.to_thread(self.ledgers.current)
        if stored is None:
            raise FailedPreconditionError(
                "delivery has not learnt a supernet from search yet: the carbon ledger starts "
                "once a delivery server started with --search has reached search"
            )
        specializations = await asyncio.to_thread(self.store.specializations, stored.version)
        fleets = [fleet_view(f) for f in await self.registry.list_fleets()]
        if fleet and fleet not in {f.name for f in fleets}:
            raise NotFoundError(f"no fleet {fleet!r}")
        devices = [d for d in [await self._devices(f) for f in fleets] if d is not None]
        ledger = fleet_ledger(
            SupernetCosts.from_proto(stored.version, stored.ledger), specializations, devices
        )
        whole = to_proto(ledger.only_fleet(fleet) if fleet else ledger, stored)
        return one_page(whole, f"carbon/{stored.version}/{fleet}", size, page_token)

    async def _devices(self, fleet: FleetView) -> FleetDevices | None:
        try:
            reports = await self.reports.of_fleet(fleet.name)
        except NotFoundError:  # deleted since the listing
            return None
        served = await asyncio.to_thread(self._served, fleet, reports)
        return FleetDevices(
            fleet.name,
            fleet.profile,
            devices=len(reports),
            served_devices=served,
            profiling=total([r.profiling for r in reports]),
        )

    def _served(self, fleet: FleetView, reports: list[DeviceReport]) -> int:
        """Devices whose last report names the model the fleet's policy targets for them."""
        try:
            target = fleet_target(self.store, self.rollouts, fleet)
        except OfaFleetError:  # e.g. pinned to a model gone from the store: none served
            return 0
        served = 0
        for report in reports:
            wanted = target.for_device(report.device_id)
            if report.reported and wanted is not None and report.sha256 == wanted.sha256:
                served += 1
        return served


def one_page(
    answer: delivery_pb2.GetCarbonLedgerResponse, listing: str, size: int, page_token: str
) -> delivery_pb2.GetCarbonLedgerResponse:
    """``answer`` with at most ``size`` profile rows and ``size`` fleet rows, those after
    the token's, by name: each list pages on its own, and the token names the last row
    of each that was shown, so a client that concatenates the pages has every row once."""
    last_profile, _, last_fleet = decode_page_token(page_token, listing).partition("|")
    profiles = sorted(answer.profiles, key=lambda p: p.profile_name)
    fleets = sorted(answer.fleets, key=lambda f: f.fleet_name)
    profiles = [p for p in profiles if p.profile_name > last_profile]
    fleets = [f for f in fleets if f.fleet_name > last_fleet]
    page = delivery_pb2.GetCarbonLedgerResponse()
    page.CopyFrom(answer)
    del page.profiles[:], page.fleets[:]
    page.profiles.extend(profiles[:size])
    page.fleets.extend(fleets[:size])
    if len(profiles) > size or len(fleets) > size:
        shown_profile = page.profiles[-1].profile_name if page.profiles else last_profile
        shown_fleet = page.fleets[-1].fleet_name if page.fleets else last_fleet
        page.next_page_token = encode_page_token(listing, f"{shown_profile}|{shown_fleet}")
    return page


def to_proto(ledger: FleetLedger, stored: StoredSupernet) -> delivery_pb2.GetCarbonLedgerResponse:
    answer = delivery_pb2.GetCarbonLedgerResponse(
        supernet_version=ledger.supernet_version,
        training=[
            common_pb2.ActivityCost(activity="training", detail=phase, cost=cost_to_proto(cost))
            for phase, cost in ledger.training
        ],
        training_total=cost_to_proto(ledger.training_total),
        predictor_fit=cost_to_proto(ledger.predictor_fit),
        fixed=cost_to_proto(ledger.fixed),
        specialized_profiles=ledger.specialized_profiles,
        specialization_total=cost_to_proto(ledger.specialization_total),
        device_profiling_total=cost_to_proto(ledger.device_profiling_total),
        once_for_all_total=cost_to_proto(ledger.once_for_all_total),
        devices=ledger.devices,
        served_devices=ledger.served_devices,
        profiles=[_profile(p) for p in ledger.profiles],
        fleets=[_fleet(f) for f in ledger.fleets],
        counterfactual_unavailable_reason=ledger.counterfactual_unavailable_reason,
        training_unavailable_reason=ledger.training_unavailable_reason,
    )
    if stored.ledger is not None:
        answer.supernet_ledger.CopyFrom(stored.ledger)
    _set(answer.per_served_device, ledger.per_served_device)
    _set(answer.scratch_per_network, ledger.scratch_per_network)
    _set(answer.counterfactual, ledger.counterfactual)
    _set_ratio(answer.ratio, ledger.ratio)
    _set_ratio(answer.break_even_profiles, ledger.break_even_profiles)
    return answer


def _profile(share: ProfileShare) -> delivery_pb2.ProfileCarbon:
    return delivery_pb2.ProfileCarbon(
        profile_name=share.profile_name,
        specializations=share.specializations,
        specialization=cost_to_proto(share.specialization),
        amortized=cost_to_proto(share.amortized),
        served_devices=share.served_devices,
    )


def _fleet(share: FleetShare) -> delivery_pb2.FleetCarbon:
    message = delivery_pb2.FleetCarbon(
        fleet_name=share.fleet_name,
        profile_name=share.profile_name,
        devices=share.devices,
        served_devices=share.served_devices,
        device_profiling=cost_to_proto(share.device_profiling),
        attributed=cost_to_proto(share.attributed),
    )
    _set(message.profile_amortized, share.profile_amortized)
    _set(message.per_served_device, share.per_served_device)
    _set(message.counterfactual, share.counterfactual)
    _set_ratio(message.ratio, share.ratio)
    return message


def _set(field: common_pb2.EnergyCost, cost: EnergyCost | None) -> None:
    """Set a message field only for a known cost: unset means unknown, never zero."""
    if cost is not None:
        field.CopyFrom(cost_to_proto(cost))


def _set_ratio(field: delivery_pb2.PerUnit, ratio: PerUnit | None) -> None:
    if ratio is None:
        return
    field.SetInParent()  # present even when every unit is undefined
    if ratio.cpu_seconds is not None:
        field.cpu_seconds = ratio.cpu_seconds
    if ratio.joules is not None:
        field.energy_joules = ratio.joules
    if ratio.co2e_grams is not None:
        field.co2e_grams = ratio.co2e_grams
