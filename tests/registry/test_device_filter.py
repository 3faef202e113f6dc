"""ListDevices' filter (an AIP-160 subset) against a real database of each kind, and over
gRPC: what matches, paging with a filter, and each malformed filter's one-line error."""

from __future__ import annotations

import grpc
import pytest
from sqlalchemy import update

from ofa_fleet.contract.rollout import RolloutPolicy
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.registry.device_filter import MAX_FILTER_LENGTH
from ofa_fleet.registry.records import DeviceStatus
from ofa_fleet.registry.store import RegistryStore
from ofa_fleet.registry.tables import DeviceRow
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN

OLD, NEW = "a" * 64, "b" * 64
NOON_US = 1_765_022_400_000_000  # 2025-12-06T12:00:00Z


@pytest.fixture
def devices(store: RegistryStore) -> dict[str, str]:
    """Five devices of fleet "pis" and one of "cams": hardware id -> device id."""
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    store.create_fleet("cams", "raspberry-pi-4", RolloutPolicy())
    ids = {}
    for name, fleet, model, latency, seen_hours in [
        ("never-reported", "pis", None, None, None),
        ("old-fast", "pis", OLD, 1.5, -3),
        ("new-slow", "pis", NEW, 9.0, -1),
        ("new-fast", "pis", NEW, 2.0, 0),
        ("no-model", "pis", "", 0.0, 1),
        ("camera", "cams", OLD, 4.0, 0),
    ]:
        device, _ = store.register_device(fleet, name)
        ids[name] = device.id
        if model is not None:
            store.report_status(device.id, DeviceStatus(model, latency or 0.0, "1.22.0", ()))
        if seen_hours is not None:
            with store.database.write() as s:
                s.execute(
                    update(DeviceRow)
                    .where(DeviceRow.id == device.id)
                    .values(last_seen_us=NOON_US + seen_hours * 3_600_000_000)
                )
    return ids


def matching(store: RegistryStore, text: str, fleet: str = "pis") -> set[str]:
    return {d.hardware_id for d in store.list_devices(fleet=fleet, filter=text).items}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"never-reported", "old-fast", "new-slow", "new-fast", "no-model"}),
        (f'status.model_sha256 = "{NEW}"', {"new-slow", "new-fast"}),
        (f'status.model_sha256 != "{NEW}"', {"never-reported", "old-fast", "no-model"}),
        ('status.model_sha256 = ""', {"never-reported", "no-model"}),
        ("status.measured_latency_ms > 2", {"new-slow"}),
        ("status.measured_latency_ms <= 2", {"old-fast", "new-fast", "no-model"}),
        ('last_seen_time < "2025-12-06T12:00:00Z"', {"old-fast", "new-slow"}),
        # Enrolling counts as being seen: now, after noon.
        (
            'last_seen_time >= "2025-12-06T13:00:00+01:00"',
            {"new-fast", "no-model", "never-reported"},
        ),
        ('hardware_id = "old-fast"', {"old-fast"}),
        (
            f'status.model_sha256 != "{NEW}" AND last_seen_time < "2025-12-06T12:00:00Z"'
            "  AND status.measured_latency_ms>1",
            {"old-fast"},
        ),
        ('hardware_id = "a \\"quoted\\" AND name"', set()),
    ],
)
def test_a_filter_selects_the_devices_it_names(
    store: RegistryStore, devices: dict[str, str], text: str, expected: set[str]
) -> None:
    assert matching(store, text) == expected


def test_a_filter_spans_fleets_and_pages_hold_to_it(
    store: RegistryStore, devices: dict[str, str]
) -> None:
    text = f'status.model_sha256 = "{OLD}"'
    assert matching(store, text, fleet="") == {"old-fast", "camera"}
    first = store.list_devices(page_size=1, filter=text)
    second = store.list_devices(page_size=1, page_token=first.next_token, filter=text)
    assert {d.hardware_id for d in first.items + second.items} == {"old-fast", "camera"}
    assert second.next_token == ""
    with pytest.raises(InvalidArgumentError, match="page_token is not one this listing"):
        store.list_devices(page_size=1, page_token=first.next_token)  # another filter


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("status.model_sha256", r"expected FIELD OP VALUE \(at character 1\)"),
        ('fleet = "pis"', "unknown field 'fleet'; known: hardware_id"),
        ('last_seen_time = "2025-12-06T12:00:00Z"', r"last_seen_time takes < <= > >=, not ="),
        ('hardware_id < "x"', "hardware_id takes = !=, not <"),
        ('status.model_sha256 = "ABC"', "expected 64 lower-case hex digits"),
        ("status.measured_latency_ms > 1e999", "expected a finite number"),
        ("status.measured_latency_ms > 1.2.3", "expected a number, got 1.2.3"),
        ('status.measured_latency_ms > "1"', 'expected a number, got "1"'),
        ('last_seen_time < "yesterday"', "expected an RFC 3339 time"),
        ('last_seen_time < "2025-12-06T12:00:00"', "needs a zone"),
        ('hardware_id = "a" OR hardware_id = "b"', r"expected AND or the end \(at character 19\)"),
        ('hardware_id = "a" AND', r"expected FIELD OP VALUE \(at character 22\)"),
        ("hardware_id = 3", "expected a quoted string, got 3"),
        (" AND ".join(['hardware_id = "a"'] * 9), "at most 8 terms"),
        ("x" * (MAX_FILTER_LENGTH + 1), f"at most {MAX_FILTER_LENGTH}"),
    ],
)
def test_a_malformed_filter_is_refused_saying_where(
    store: RegistryStore, text: str, message: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=message) as refused:
        store.list_devices(filter=text)
    assert refused.value.field == "filter"


def test_list_devices_filters_over_grpc_and_refuses_a_bad_filter(tmp_path) -> None:
    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        store = registry.store
        store.create_profile(example_profile())
        store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
        reported, _ = store.register_device("pis", "reported")
        store.register_device("pis", "silent")
        store.report_status(reported.id, DeviceStatus(NEW, 2.0, "1.22.0", ()))
        with registry.channel() as channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            answer = stub.ListDevices(
                registry_pb2.ListDevicesRequest(
                    parent="fleets/-", filter=f'status.model_sha256 = "{NEW}"'
                ),
                metadata=bearer(OPERATOR_TOKEN),
                timeout=10,
            )
            assert [d.hardware_id for d in answer.devices] == ["reported"]
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListDevices(
                    registry_pb2.ListDevicesRequest(parent="fleets/-", filter="model = 1"),
                    metadata=bearer(OPERATOR_TOKEN),
                    timeout=10,
                )
            assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert "unknown field 'model'" in refused.value.details()
