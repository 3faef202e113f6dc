"""GetCarbonLedger against a real registry and delivery server (and, in the slow test, a
real search service on Ray specializing a real profile)."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.delivery.store.supernet_ledgers import SupernetLedgers
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import common_pb2, delivery_pb2, delivery_pb2_grpc, registry_pb2
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.delivery.conftest import manifest_for, model_bytes
from tests.delivery.test_reconciler import SETTINGS, eventually, start_delivery
from tests.delivery.world import OPERATOR, PROFILE, World, enrol
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.search.conftest import example_profile
from tests.search.server_thread import SearchServerThread

VERSION = "0123456789abcdef"  # manifest_for's supernet


def cost(cpu: float, joules: float, grams: float) -> common_pb2.EnergyCost:
    return common_pb2.EnergyCost(cpu_seconds=cpu, energy_joules=joules, co2e_grams=grams)


def supernet_ledger(scratch: bool) -> common_pb2.SupernetLedger:
    message = common_pb2.SupernetLedger(
        supernet_version=VERSION,
        activities=[
            common_pb2.ActivityCost(activity="training", detail="full", cost=cost(60, 600, 6)),
            common_pb2.ActivityCost(activity="training", detail="kernel", cost=cost(30, 300, 3)),
            common_pb2.ActivityCost(activity="predictor_fit", cost=cost(10, 100, 1)),
        ],
    )
    if scratch:
        message.scratch.cost_per_network.CopyFrom(cost(200, 2000, 20))
        message.scratch.target_top1 = 0.9
    return message


def report(world: World, device: int, sha256: str, spent: common_pb2.EnergyCost) -> None:
    enrolled = world.devices[device]
    world.registry.ReportStatus(
        registry_pb2.ReportStatusRequest(
            name=enrolled.device.name,
            report=registry_pb2.StatusReport(model_sha256=sha256, profiling_cost=spent),
        ),
        metadata=bearer(enrolled.device_token),
        timeout=10,
    )


def carbon(world: World, fleet: str = "", metadata=OPERATOR):
    return world.delivery.GetCarbonLedger(
        delivery_pb2.GetCarbonLedgerRequest(fleet=f"fleets/{fleet}" if fleet else ""),
        metadata=metadata,
        timeout=30,
    )


def failure(world: World, fleet: str = "", metadata=OPERATOR) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        carbon(world, fleet, metadata)
    return caught.value


def units(message: common_pb2.EnergyCost) -> tuple[float, float, float]:
    return (message.cpu_seconds, message.energy_joules, message.co2e_grams)


def test_the_ledger_of_a_served_fleet(world: World) -> None:
    error = failure(world)
    assert error.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "supernet" in error.details()

    SupernetLedgers(world.store.database).save(VERSION, supernet_ledger(scratch=True))
    data = model_bytes(1, 20_000)
    manifest = manifest_for(data, PROFILE)
    world.store.add(manifest, world.signer.sign(manifest), data, EnergyCost(4.0, 40.0, 0.4))
    world.store.set_current(PROFILE, manifest.sha256, "missing")
    report(world, 0, manifest.sha256, cost(1, 10, 0.1))  # runs its target: served
    report(world, 1, "0" * 64, cost(2, 20, 0.2))  # runs something else: profiled, not served

    answer = carbon(world)
    assert answer.supernet_version == VERSION
    assert answer.supernet_ledger == supernet_ledger(scratch=True)
    assert [(a.detail, units(a.cost)) for a in answer.training] == [
        ("full", (60, 600, 6)),
        ("kernel", (30, 300, 3)),
    ]
    assert units(answer.fixed) == pytest.approx((100, 1000, 10))
    assert answer.specialized_profiles == 1
    assert units(answer.specialization_total) == pytest.approx((4, 40, 0.4))
    assert units(answer.device_profiling_total) == pytest.approx((3, 30, 0.3))
    assert units(answer.once_for_all_total) == pytest.approx((107, 1070, 10.7))
    assert (answer.devices, answer.served_devices) == (2, 1)
    assert units(answer.per_served_device) == pytest.approx((107, 1070, 10.7))
    (profile,) = answer.profiles
    assert (profile.profile_name, profile.specializations, profile.served_devices) == (
        PROFILE,
        1,
        1,
    )
    assert units(profile.amortized) == pytest.approx((104, 1040, 10.4))
    # One scratch network for the one profile, plus the same device profiling.
    assert units(answer.counterfactual) == pytest.approx((203, 2030, 20.3))
    assert answer.ratio.energy_joules == pytest.approx(2030 / 1070)
    assert answer.break_even_profiles.energy_joules == pytest.approx(1000 / (2000 - 40))
    assert answer.counterfactual_unavailable_reason == ""
    (fleet,) = answer.fleets
    assert (fleet.fleet_name, fleet.devices, fleet.served_devices) == ("pis", 2, 1)
    assert units(fleet.attributed) == pytest.approx((107, 1070, 10.7))

    one_row = world.delivery.GetCarbonLedger(
        delivery_pb2.GetCarbonLedgerRequest(page_size=1), metadata=OPERATOR, timeout=30
    )
    assert one_row == answer  # one profile and one fleet: one page
    with pytest.raises(grpc.RpcError) as caught:
        world.delivery.GetCarbonLedger(
            delivery_pb2.GetCarbonLedgerRequest(page_size=-1), metadata=OPERATOR, timeout=30
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "page_size must be 1-1000" in caught.value.details()

    narrowed = carbon(world, "pis")
    assert [f.fleet_name for f in narrowed.fleets] == ["pis"]
    assert narrowed.once_for_all_total == answer.once_for_all_total
    assert failure(world, "nope").code() is grpc.StatusCode.NOT_FOUND
    assert failure(world, "Not A Name!").code() is grpc.StatusCode.INVALID_ARGUMENT
    device = world.devices[0]
    denied = failure(world, metadata=bearer(device.device_token))
    assert denied.code() is grpc.StatusCode.PERMISSION_DENIED


def test_without_a_scratch_reference_the_counterfactual_is_unset(world: World) -> None:
    SupernetLedgers(world.store.database).save(VERSION, supernet_ledger(scratch=False))
    answer = carbon(world)
    assert not answer.HasField("counterfactual") and not answer.HasField("ratio")
    assert not answer.HasField("scratch_per_network")
    assert not answer.HasField("break_even_profiles")
    assert "no scratch reference" in answer.counterfactual_unavailable_reason
    assert not answer.HasField("per_served_device")  # nothing served yet
    assert units(answer.fixed) == pytest.approx((100, 1000, 10))


@pytest.mark.slow
def test_a_specialized_profile_shows_its_cost_and_the_supernets(specializer, tmp_path: Path):
    """The reconciler specializes a real profile on the session supernet; its model's
    metered cost and search's supernet ledger land in delivery's database and the report,
    and the counters read them back."""
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry,
        SearchServerThread(specializer) as search,
        registry.channel() as channel,
    ):
        stub = RegistryServiceStub(channel)
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile(PROFILE))),
            metadata=OPERATOR,
            timeout=10,
        )
        (device,) = enrol(
            stub,
            registry_pb2.CreateFleetRequest(
                fleet_id="pis", fleet=registry_pb2.Fleet(profile=f"profiles/{PROFILE}")
            ),
            1,
        )
        delivery, store = start_delivery(registry, search, tmp_path, SETTINGS)
        with delivery, grpc.insecure_channel(delivery.address) as delivery_channel:
            model = eventually(lambda: store.current(PROFILE))
            stub.ReportStatus(
                registry_pb2.ReportStatusRequest(
                    name=device.device.name,
                    report=registry_pb2.StatusReport(
                        model_sha256=model.sha256, profiling_cost=cost(0.5, 5, 0.05)
                    ),
                ),
                metadata=bearer(device.device_token),
                timeout=10,
            )
            answer = delivery_pb2_grpc.DeliveryServiceStub(delivery_channel).GetCarbonLedger(
                delivery_pb2.GetCarbonLedgerRequest(fleet="fleets/pis"),
                metadata=OPERATOR,
                timeout=30,
            )
            metrics = delivery.metrics.registry
            joules = metrics.get_sample_value(
                "ofa_fleet_energy_joules_total", {"activity": "specialization"}
            )
    assert model.cost.cpu_seconds > 0 and model.cost.joules > 0 and model.cost.co2e_grams > 0
    assert answer.supernet_version == model.manifest.supernet_version
    assert answer.HasField("supernet_ledger"), answer.training_unavailable_reason
    assert {a.activity for a in answer.supernet_ledger.activities} >= {"training"}
    assert answer.training_total.energy_joules > 0
    assert answer.specialized_profiles == 1
    assert answer.specialization_total.energy_joules == pytest.approx(model.cost.joules)
    assert answer.specialization_total.energy_joules > 0
    (fleet,) = answer.fleets
    assert (fleet.devices, fleet.served_devices) == (1, 1)
    assert fleet.device_profiling.energy_joules == pytest.approx(5)
    assert fleet.per_served_device.energy_joules == pytest.approx(
        answer.once_for_all_total.energy_joules
    )
    assert joules == pytest.approx(model.cost.joules)
