"""The reconciler against a real registry, a real search service on Ray, and the store."""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import onnxruntime as ort
import pytest
from google.longrunning import operations_pb2, operations_pb2_grpc
from google.protobuf import duration_pb2

from ofa_fleet.contract.error_details import PROFILE_INFEASIBLE, from_status
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.contract.signatures import verify_manifest
from ofa_fleet.delivery.reconcile.fleet_monitor import MonitorSettings
from ofa_fleet.delivery.reconcile.reconciler import ReconcilerSettings
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.specializations import (
    BackoffPolicy,
    Specializations,
    SpecializationStatus,
)
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.search.result_cache import ResultCache
from ofa_fleet.v1 import (
    delivery_pb2,
    delivery_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
    search_pb2,
)
from tests.delivery.conftest import blob_store, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.search.conftest import example_profile
from tests.search.server_thread import SearchServerThread
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.slow

OPERATOR = bearer(OPERATOR_TOKEN)
SETTINGS = ReconcilerSettings(
    retry_poll_seconds=0.2,
    backoff=BackoffPolicy(base_seconds=1.0, cap_seconds=60.0),
    options=search_pb2.SearchOptions(rerank_top_k=1, patience=5),
    monitor=MonitorSettings(settle_seconds=0.2),
)


def eventually(
    check: Callable[[], object], timeout: float = 180.0, state: Callable[[], object] = str
) -> object:
    """`check()` once it is truthy; on timeout the failure shows `state()`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"the reconciler did not get there: {state()}"
        time.sleep(0.2)


@pytest.fixture
def services(specializer, tmp_path: Path) -> Iterator[tuple]:
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry,
        SearchServerThread(specializer) as search,
    ):
        yield registry, search, tmp_path


def start_delivery(
    registry, search, folder: Path, settings: ReconcilerSettings = SETTINGS
) -> tuple[DeliveryServerThread, ModelStore]:
    database = open_database(f"sqlite:///{folder / 'delivery.db'}")
    store = ModelStore(database, blob_store("files", database, folder / "blobs"))
    delivery = DeliveryServerThread(
        store, folder / "signing.key", registry.address, 64 * 1024, search.address, settings
    )
    return delivery, store


def marked_current(ledger: Specializations, profile: str) -> object:
    """The profile's ledger entry once CURRENT: it is marked just after the model is made
    current, not in the same transaction, so a test that saw the model waits for it."""
    state = ledger.get(profile)
    return state if state is not None and state.state == SpecializationStatus.CURRENT else None


def test_profiles_get_models_that_follow_their_revisions(services):
    registry, search, folder = services
    with registry.channel() as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        profile = example_profile("x86-gateway")
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(profile)),
            metadata=OPERATOR,
            timeout=10,
        )
        delivery, store = start_delivery(registry, search, folder)
        ledger = Specializations(store.database)
        with delivery:
            first = eventually(lambda: store.current("x86-gateway"))
            state = eventually(lambda: marked_current(ledger, "x86-gateway"))
            assert state.profile_revision == 1
            manifest = first.manifest
            assert manifest.profile_revision == 1 and manifest.figures["measured_top1"] > 0.5
            verify_manifest(
                delivery.signer.public_key_pem,
                Manifest.from_bytes(first.manifest_bytes),
                first.signature,
            )
            session = ort.InferenceSession(
                store.read(first.sha256), providers=["CPUExecutionProvider"]
            )
            shape = [1 if not isinstance(d, int) else d for d in session.get_inputs()[0].shape]
            (logits,) = session.run(None, {"input": np.zeros(shape, dtype=np.float32)})
            assert np.isfinite(logits).all()

            # A new revision with a tighter budget: a new model, recorded as such.
            tighter = dataclasses.replace(
                profile,
                constraints=dataclasses.replace(profile.constraints, latency_budget_ms=0.6),
            )
            stub.UpdateProfile(
                registry_pb2.UpdateProfileRequest(profile=profile_to_proto(tighter)),
                metadata=OPERATOR,
                timeout=10,
            )
            eventually(lambda: ledger.get("x86-gateway").profile_revision == 2)
            history = store.history("x86-gateway")
            assert history[0].reason == "profile-changed" or history[0].sha256 == first.sha256
            assert store.current("x86-gateway").manifest.figures["predicted_latency_ms"] <= 0.6
            metrics = delivery.metrics.registry
            timed = "ofa_fleet_specialization_seconds_count"
            eventually(lambda: metrics.get_sample_value(timed, {"reason": "profile-changed"}))
            assert metrics.get_sample_value(timed, {"reason": "missing"}) >= 1
            ok = metrics.get_sample_value("ofa_fleet_specializations_total", {"outcome": "ok"})
            assert ok >= 2
            assert metrics.get_sample_value("ofa_fleet_specializations_failing") == 0

        # A restart looks at every profile again and finds nothing to do.
        before = ledger.get("x86-gateway")
        delivery, store = start_delivery(registry, search, folder)
        with delivery:
            time.sleep(2.0)
            after = Specializations(store.database).get("x86-gateway")
        assert after == before


def test_search_restarted_with_another_supernet_makes_every_model_stale(services, specializer):
    """Search comes back on its address serving another supernet version: delivery polls
    it, notices, and specializes the profile again from the new supernet."""
    registry, _, folder = services
    with registry.channel() as channel:
        registry_pb2_grpc.RegistryServiceStub(channel).CreateProfile(
            registry_pb2.CreateProfileRequest(
                profile=profile_to_proto(example_profile("raspberry-pi-4"))
            ),
            metadata=OPERATOR,
            timeout=10,
        )
    polling = dataclasses.replace(SETTINGS, supernet_poll_seconds=0.5)
    old_search = SearchServerThread(specializer).__enter__()
    delivery, store = start_delivery(registry, old_search, folder, polling)
    with delivery:
        try:
            first = eventually(lambda: store.current("raspberry-pi-4"))
        finally:
            old_search.__exit__(None, None, None)
        assert first.manifest.supernet_version == specializer.supernet_version
        # The same Ray workers under another version: to delivery, a new supernet.
        workers = copy.copy(specializer.workers)
        workers.version = "a-newer-supernet"
        newer = dataclasses.replace(specializer, workers=workers, cache=ResultCache())
        with SearchServerThread(newer, port=old_search.port) as new_search:
            ledger = Specializations(store.database)
            eventually(
                lambda: (
                    (s := ledger.get("raspberry-pi-4")).supernet_version == "a-newer-supernet"
                    and s.state == SpecializationStatus.CURRENT
                ),
                state=lambda: ledger.get("raspberry-pi-4"),
            )
            asked = new_search.metrics.registry.get_sample_value(
                "ofa_fleet_search_specializations_total", {"outcome": "ok"}
            )
            assert asked == 1  # a real search on the new supernet, once
        # Same weights under a new name give the same bytes: one model, still current,
        # its history untouched (a model is its bytes, whatever asked for it).
        again = store.current("raspberry-pi-4")
        assert again.sha256 == first.sha256
        assert [h.sha256 for h in store.history("raspberry-pi-4")] == [first.sha256]


def test_two_profiles_given_the_same_bytes_each_get_their_own_signed_manifest(services):
    """Two profiles whose searches choose the same subnet: one blob, two models, each with
    its profile's revision and predicted figures (before, the second profile's devices got
    the first one's manifest, and judged their budget by another machine's prediction)."""
    registry, search, folder = services
    loose = example_profile("x86-gateway")
    loose = dataclasses.replace(
        loose, constraints=dataclasses.replace(loose.constraints, latency_budget_ms=1000.0)
    )
    slower = dataclasses.replace(
        loose,
        name="gateway-at-half-speed",
        cpu=dataclasses.replace(loose.cpu, peak_gflops=loose.cpu.peak_gflops / 2),
    )
    with registry.channel() as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        for profile in (loose, slower):
            stub.CreateProfile(
                registry_pb2.CreateProfileRequest(profile=profile_to_proto(profile)),
                metadata=OPERATOR,
                timeout=10,
            )
    delivery, store = start_delivery(registry, search, folder)
    with delivery, grpc.insecure_channel(delivery.address) as channel:
        fast = eventually(lambda: store.current(loose.name))
        slow = eventually(lambda: store.current(slower.name))
        assert fast.sha256 == slow.sha256  # the most accurate subnet fits both budgets
        for record, profile in ((fast, loose), (slow, slower)):
            assert record.profile_name == record.manifest.profile_name == profile.name
            verify_manifest(
                delivery.signer.public_key_pem,
                Manifest.from_bytes(record.manifest_bytes),
                record.signature,
            )
        fast_ms = fast.manifest.model_figures().predicted_latency_ms
        slow_ms = slow.manifest.model_figures().predicted_latency_ms
        assert slow_ms > fast_ms  # each its own hardware's prediction
        version = fast.manifest.supernet_version
        assert sorted(s.profile_name for s in store.specializations(version)) == sorted(
            [loose.name, slower.name]
        )
        delivery_stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
        for profile in (loose, slower):
            answer = delivery_stub.GetProfileModels(
                delivery_pb2.GetProfileModelsRequest(name=f"profiles/{profile.name}"),
                metadata=OPERATOR,
                timeout=10,
            )
            assert answer.current.profile_name == profile.name
            assert Manifest.from_bytes(answer.current.canonical_manifest).profile_name == (
                profile.name
            )


def test_an_infeasible_profile_waits_for_a_change_and_its_devices_are_told_why(services):
    registry, search, folder = services
    profile = example_profile("raspberry-pi-3")
    impossible = dataclasses.replace(
        profile, constraints=dataclasses.replace(profile.constraints, latency_budget_ms=0.001)
    )
    with registry.channel() as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(impossible)),
            metadata=OPERATOR,
            timeout=10,
        )
        created = stub.CreateFleet(
            registry_pb2.CreateFleetRequest(
                fleet_id="pis", fleet=registry_pb2.Fleet(profile="profiles/raspberry-pi-3")
            ),
            metadata=OPERATOR,
            timeout=10,
        )
        device = stub.RegisterDevice(
            registry_pb2.RegisterDeviceRequest(hardware_id="sn-1"),
            metadata=bearer(created.enrolment_token),
            timeout=10,
        )
    delivery, store = start_delivery(registry, search, folder)
    ledger = Specializations(store.database)
    with delivery, grpc.insecure_channel(delivery.address) as channel:
        delivery_stub = delivery_pb2_grpc.DeliveryServiceStub(channel)
        eventually(
            lambda: (
                (s := ledger.get("raspberry-pi-3")) and s.state == SpecializationStatus.INFEASIBLE
            )
        )
        time.sleep(2.5)  # the retry loop polls every 0.2 s with a 1 s backoff: no retry
        state = ledger.get("raspberry-pi-3")
        assert state.attempts == 1 and state.failed_revision == 1
        assert "the fastest subnet needs" in state.last_error
        shown = delivery_stub.GetProfileModels(
            delivery_pb2.GetProfileModelsRequest(name="profiles/raspberry-pi-3"),
            metadata=OPERATOR,
            timeout=10,
        )
        assert shown.state == delivery_pb2.SPECIALIZATION_STATE_INFEASIBLE
        assert shown.state_profile_revision == 1
        assert "fastest subnet" in shown.last_error and not shown.HasField("current")
        with pytest.raises(grpc.RpcError) as told:
            delivery_stub.GetModelManifest(
                delivery_pb2.GetModelManifestRequest(device=device.device.name),
                metadata=bearer(device.device_token),
                timeout=10,
            )
        assert told.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert "no subnet fits profile 'raspberry-pi-3'" in told.value.details()
        assert "the fastest subnet needs" in told.value.details()
        metrics = delivery.metrics.registry
        assert metrics.get_sample_value("ofa_fleet_specializations_infeasible") == 1
        failed = metrics.get_sample_value("ofa_fleet_specializations_total", {"outcome": "failed"})
        assert failed == 1
        timed = "ofa_fleet_specialization_seconds_count"
        assert metrics.get_sample_value(timed, {"reason": "missing"}) is None  # failures untimed

        # An operator asks again all the same: the operation ends saying why it cannot.
        operations = operations_pb2_grpc.OperationsStub(channel)
        asked = delivery_stub.Respecialize(
            delivery_pb2.RespecializeRequest(name="profiles/raspberry-pi-3"),
            metadata=OPERATOR,
            timeout=10,
        )
        refused = wait_for(operations, asked.name)
        assert refused.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
        assert "the fastest subnet needs" in refused.error.message
        assert from_status(refused.error).reason == PROFILE_INFEASIBLE

        # The operator relaxes the budget: the new revision is tried at once.
        with registry.channel() as registry_channel:
            registry_pb2_grpc.RegistryServiceStub(registry_channel).UpdateProfile(
                registry_pb2.UpdateProfileRequest(profile=profile_to_proto(profile)),
                metadata=OPERATOR,
                timeout=10,
            )
        model = eventually(lambda: store.current("raspberry-pi-3"))
        assert model.manifest.profile_revision == 2
        settled = eventually(lambda: marked_current(ledger, "raspberry-pi-3"))
        assert settled.profile_revision == 2
        # Asked again, the operation ends with the model then current (search's cache
        # answers the same request at once).
        asked = delivery_stub.Respecialize(
            delivery_pb2.RespecializeRequest(name="profiles/raspberry-pi-3"),
            metadata=OPERATOR,
            timeout=10,
        )
        made = wait_for(operations, asked.name)
        assert made.HasField("response") and not made.HasField("error")
        manifest = delivery_pb2.ModelManifest()
        assert made.response.Unpack(manifest)
        assert manifest.sha256 == store.current("raspberry-pi-3").sha256
        assert manifest.profile_revision == 2 and manifest.signature


def wait_for(operations: operations_pb2_grpc.OperationsStub, name: str) -> operations_pb2.Operation:
    """The operation once done (asserted), waiting up to 3 minutes."""
    deadline = time.monotonic() + 180
    while True:
        answer = operations.WaitOperation(
            operations_pb2.WaitOperationRequest(
                name=name, timeout=duration_pb2.Duration(seconds=20)
            ),
            metadata=OPERATOR,
            timeout=30,
        )
        if answer.done:
            return answer
        assert time.monotonic() < deadline, f"operation {name} not done: {answer}"


def test_a_model_measured_over_budget_is_specialized_again_once_with_the_reports(services):
    registry, search, folder = services
    with registry.channel() as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile())),
            metadata=OPERATOR,
            timeout=10,
        )
        fleet = stub.CreateFleet(
            registry_pb2.CreateFleetRequest(
                fleet_id="pis", fleet=registry_pb2.Fleet(profile="profiles/raspberry-pi-4")
            ),
            metadata=OPERATOR,
            timeout=10,
        )
        devices = [
            stub.RegisterDevice(
                registry_pb2.RegisterDeviceRequest(),
                metadata=bearer(fleet.enrolment_token),
                timeout=10,
            )
            for _ in range(3)
        ]
        delivery, store = start_delivery(registry, search, folder)
        ledger = Specializations(store.database)
        with delivery:
            first = eventually(lambda: store.current("raspberry-pi-4"))
            budget = example_profile().constraints.latency_budget_ms
            slow = first.manifest.figures["predicted_latency_ms"] * 1.5
            measured = max(slow, budget * 1.1)  # over budget, a calibration search can meet
            for device in devices:
                stub.ReportStatus(
                    registry_pb2.ReportStatusRequest(
                        name=device.device.name,
                        report=registry_pb2.StatusReport(
                            model_sha256=first.sha256, measured_latency_ms=measured
                        ),
                    ),
                    metadata=bearer(device.device_token),
                    timeout=10,
                )
            second = eventually(
                lambda: (c := store.current("raspberry-pi-4")) and c.sha256 != first.sha256 and c
            )
            assert second.manifest.figures["latency_source"] == "calibrated"
            assert second.manifest.figures["predicted_latency_ms"] <= budget
            state = ledger.get("raspberry-pi-4")
            assert (state.over_budget_sha256, state.over_budget_reports) == (first.sha256, 3)
            assert state.latency_reports == ((first.manifest.arch, measured),)
            time.sleep(1.0)  # the devices still report the old model: no second search
            reasons = [h.reason for h in store.history("raspberry-pi-4")]
            assert reasons == ["over-budget", "missing"]
