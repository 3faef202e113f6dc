"""The registry's core against a real database of each kind, no gRPC in between."""

from __future__ import annotations

import dataclasses
import json
import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text

from ofa_fleet.carbon.cost import EnergyCost
from ofa_fleet.contract import tokens
from ofa_fleet.contract.rollout import RolloutPolicy, RolloutStrategy
from ofa_fleet.errors import (
    AlreadyExistsError,
    ConflictError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
)
from ofa_fleet.hardware.profile import Constraints
from ofa_fleet.registry import store as registry_store
from ofa_fleet.registry.records import (
    ChangeKind,
    ChangeOperation,
    DeviceStatus,
)
from ofa_fleet.registry.store import ENROL_RETRY_WINDOW_US, RegistryStore
from ofa_fleet.registry.tables import Base, DeviceRow, FleetRow
from tests.registry.conftest import example_profile

SHA = "ab" * 32


def test_migrated_schema_matches_the_tables(store: RegistryStore) -> None:
    with store.database.writer.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_migrating_twice_changes_nothing(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.database.migrate()
    assert store.get_profile("raspberry-pi-4").revision == 1


def test_profile_round_trips_with_revisions(store: RegistryStore) -> None:
    spec = example_profile()
    created = store.create_profile(spec)
    assert (created.revision, created.spec) == (1, spec)
    tighter = dataclasses.replace(
        spec, constraints=dataclasses.replace(spec.constraints, latency_budget_ms=2.5)
    )
    updated = store.update_profile(tighter, expected_revision=1)
    assert updated.revision == 2
    assert store.get_profile(spec.name).spec.constraints.latency_budget_ms == 2.5
    with pytest.raises(ConflictError, match="revision 2, not the expected 1"):
        store.update_profile(spec, expected_revision=1)


def test_duplicate_and_missing_names(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    with pytest.raises(AlreadyExistsError, match="'raspberry-pi-4' already exists"):
        store.create_profile(example_profile())
    with pytest.raises(NotFoundError, match="profile 'nope' does not exist"):
        store.get_profile("nope")
    with pytest.raises(NotFoundError, match="profile 'nope' does not exist; create it"):
        store.create_fleet("f", "nope", RolloutPolicy())
    with pytest.raises(InvalidArgumentError, match="lower-case letters"):
        store.get_profile("Bad_Name")


def test_profile_in_use_cannot_be_deleted_and_names_its_fleets(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    for name in ("alpha", "beta"):
        store.create_fleet(name, "raspberry-pi-4", RolloutPolicy())
    with pytest.raises(FailedPreconditionError, match="fleet\\(s\\) 'alpha', 'beta'"):
        store.delete_profile("raspberry-pi-4")
    store.delete_fleet("alpha")
    store.delete_fleet("beta")
    store.delete_profile("raspberry-pi-4")
    with pytest.raises(NotFoundError):
        store.get_profile("raspberry-pi-4")


def test_fleet_with_devices_cannot_be_deleted(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    device, _ = store.register_device("pis", "sn-1")
    with pytest.raises(FailedPreconditionError, match="1 enrolled device"):
        store.delete_fleet("pis")
    store.delete_device(device.id)
    store.delete_fleet("pis")


def test_tokens_are_stored_only_as_digests(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    _, enrolment = store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    device, device_token = store.register_device("pis", "sn-1")
    with store.database.read() as s:
        fleet_hash = s.scalar(select(FleetRow.token_hash))
        device_hash = s.scalar(select(DeviceRow.token_hash))
        dumped = " ".join(
            str(value)
            for table in ("fleets", "devices", "changes")
            for row in s.execute(text(f"SELECT * FROM {table}"))
            for value in row
        )
    assert fleet_hash == tokens.digest(enrolment)
    assert device_hash == tokens.digest(device_token)
    assert enrolment not in dumped and device_token not in dumped
    assert store.fleet_for_enrolment_token(enrolment) == "pis"
    assert store.device_for_token(device_token) == f"fleets/pis/devices/{device.id}"
    assert store.device_for_token(device_token + "x") is None


def test_rollout_policies_validate_and_round_trip(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    staged = RolloutPolicy(RolloutStrategy.STAGED, "", 10, 20, 3)
    pinned = RolloutPolicy(RolloutStrategy.PINNED, SHA)
    store.create_fleet("staged", "raspberry-pi-4", staged)
    store.create_fleet("pinned", "raspberry-pi-4", pinned)
    assert store.get_fleet("staged").rollout == staged
    assert store.get_fleet("pinned").rollout == pinned
    with pytest.raises(InvalidArgumentError, match=r"pinned_model_sha256 .* 64 lower-case hex"):
        RolloutPolicy(RolloutStrategy.PINNED, "abc")
    with pytest.raises(InvalidArgumentError, match="canary_percent must be 1-100"):
        RolloutPolicy(RolloutStrategy.STAGED, "", 0, 20, 1)


def test_device_status_is_validated_and_stored(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    device, _ = store.register_device("pis", "sn-1")
    assert device.status is None
    status = DeviceStatus(SHA, 3.25, "1.22.0", ("first", "second"))
    reported = store.report_status(device.id, status)
    assert reported.revision == 2
    assert reported.status is not None
    assert (reported.status.model_sha256, reported.status.errors) == (SHA, ("first", "second"))
    assert store.get_device(device.id).status == reported.status
    with pytest.raises(InvalidArgumentError, match="measured_latency_ms must be positive"):
        DeviceStatus(SHA, float("nan"))
    with pytest.raises(InvalidArgumentError, match=r"U\+0000"):
        DeviceStatus(SHA, 1.0, "1.2\x00")
    with pytest.raises(NotFoundError):
        store.heartbeat("d-" + "0" * 20)


def test_listings_page_through_everything_once(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("a", "raspberry-pi-4", RolloutPolicy())
    store.create_fleet("b", "raspberry-pi-4", RolloutPolicy())
    ids = {store.register_device("a" if i % 3 else "b", f"sn-{i}")[0].id for i in range(7)}
    seen, token = [], ""
    while True:
        page = store.list_devices(page_size=2, page_token=token)
        seen += [d.id for d in page.items]
        token = page.next_token
        if not token:
            break
    assert sorted(seen) == sorted(ids)
    assert len(store.list_devices(fleet="b").items) == 3
    with pytest.raises(InvalidArgumentError, match="page_token is not one this listing issued"):
        store.list_devices(page_token=store.list_devices(page_size=1).next_token, fleet="a")
    with pytest.raises(InvalidArgumentError, match="page_size must be 1-1000"):
        store.list_profiles(page_size=5000)


def test_changes_are_gap_free_and_in_commit_order(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())

    def enrol(n: int) -> None:
        for i in range(n):
            store.register_device("pis", f"{threading.get_ident()}-{i}")

    workers = [threading.Thread(target=enrol, args=(10,)) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    with pytest.raises(AlreadyExistsError):  # a failed write leaves no change behind
        store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    changes = store.changes_after(0)
    assert [c.cursor for c in changes] == list(range(1, 43))
    assert store.last_cursor() == 42
    assert changes[0].kind is ChangeKind.PROFILE
    assert changes[1].kind is ChangeKind.FLEET and changes[1].parent == "raspberry-pi-4"
    assert {c.operation for c in changes[2:]} == {ChangeOperation.CREATED}
    assert [c.committed_us for c in changes] == sorted(c.committed_us for c in changes)
    assert store.changes_after(40) == changes[40:]


def test_old_changes_are_pruned_and_cursors_never_repeat(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    device, _ = store.register_device("pis", "")
    changes = store.changes_after(0)
    assert store.changes_after(0, kinds=frozenset({ChangeKind.DEVICE})) == changes[2:]
    assert store.changes_after(0, up_to=2) == changes[:2]
    assert store.first_cursor() == 1
    assert store.prune_changes(changes[1].committed_us + 1) == 2  # the first two
    assert store.first_cursor() == 3 and store.changes_after(0) == changes[2:]
    assert store.prune_changes(changes[-1].committed_us + 1) == 1  # now none is held
    assert store.changes_after(0) == [] and store.first_cursor() == 4
    store.delete_device(device.id)
    assert [c.cursor for c in store.changes_after(0)] == [4]  # the counter went on


def test_a_listing_page_ends_before_its_records_weigh_too_much(
    store: RegistryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a-one", "b-two", "c-three"):
        store.create_profile(dataclasses.replace(example_profile(), name=name))
    one = len(json.dumps(example_profile().to_dict(), separators=(",", ":")))
    monkeypatch.setattr(registry_store, "MAX_PAGE_BYTES", int(one * 1.5))
    first = store.list_profiles(page_size=10)
    assert [p.name for p in first.items] == ["a-one"] and first.next_token
    names = [p.name for p in first.items]
    page = first
    while page.next_token:
        page = store.list_profiles(page_size=10, page_token=page.next_token)
        names += [p.name for p in page.items]
    assert names == ["a-one", "b-two", "c-three"]  # each once, in order
    monkeypatch.setattr(registry_store, "MAX_PAGE_BYTES", 1)  # never less than one per page
    assert len(store.list_profiles(page_size=10).items) == 1


def test_heartbeat_is_not_a_change(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    device, _ = store.register_device("pis", "")
    before = store.last_cursor()
    seen = store.heartbeat(device.id)
    assert store.last_cursor() == before
    assert store.get_device(device.id).last_seen_us == seen


def test_writes_that_change_nothing_bump_no_revision_and_write_no_change(
    store: RegistryStore,
) -> None:
    spec = example_profile()
    store.create_profile(spec)
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    device, _ = store.register_device("pis", "sn-1")
    first = store.report_status(device.id, DeviceStatus(SHA, 3.25, "1.22.0", ("boom",)))
    before = store.last_cursor()
    assert store.update_profile(spec, expected_revision=1).revision == 1
    assert store.update_fleet("pis", rollout=RolloutPolicy(), expected_revision=1).revision == 1
    # The same report again (a retry after a lost response): seen, nothing else written.
    again = store.report_status(device.id, DeviceStatus(SHA, 3.25, "1.22.0", ("boom",)))
    assert again.revision == first.revision == 2
    assert again.status == first.status and again.last_seen_us >= first.last_seen_us
    assert store.last_cursor() == before
    # A stale expected revision is still a conflict, even for an update that changes nothing.
    with pytest.raises(ConflictError):
        store.update_profile(spec, expected_revision=7)
    # Anything new is written: a changed field, or a profiling cost to add to the total.
    assert store.report_status(device.id, DeviceStatus(SHA, 3.25, "1.22.0")).revision == 3
    costly = DeviceStatus(SHA, 3.25, "1.22.0", profiling_cost=EnergyCost(1.0, 2.0, 0.1))
    assert store.report_status(device.id, costly).revision == 4
    staged = RolloutPolicy(RolloutStrategy.STAGED, "", 10, 20, 3)
    assert store.update_fleet("pis", rollout=staged).revision == 2
    looser = dataclasses.replace(
        spec, constraints=dataclasses.replace(spec.constraints, latency_budget_ms=99.0)
    )
    assert store.update_profile(looser).revision == 2
    assert store.last_cursor() == before + 4


def test_an_enrolment_retried_with_its_request_id_is_one_device(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    request_id = "123e4567-e89b-42d3-a456-426614174000"
    first, lost = store.register_device("pis", "sn-1", request_id)
    before = store.last_cursor()
    again, token = store.register_device("pis", "sn-1", request_id)
    assert again == first and token != lost
    assert store.device_for_token(lost) is None
    assert store.device_for_token(token) == f"fleets/pis/devices/{first.id}"
    assert store.last_cursor() == before  # a retry is not a second enrolment
    assert [d.id for d in store.list_devices().items] == [first.id]
    # The same id in another fleet is another enrolment.
    store.create_fleet("more", "raspberry-pi-4", RolloutPolicy())
    assert store.register_device("more", "sn-1", request_id)[0].id != first.id
    # After the enrolment window, the id makes nothing.
    with store.database.write() as s:
        s.get(DeviceRow, first.id).created_us -= ENROL_RETRY_WINDOW_US + 1
    with pytest.raises(AlreadyExistsError, match="too long ago"):
        store.register_device("pis", "sn-1", request_id)
    with pytest.raises(InvalidArgumentError, match="is not a UUID"):
        store.register_device("pis", "sn-2", request_id.upper())


def test_a_report_retried_with_its_request_id_adds_its_cost_once(store: RegistryStore) -> None:
    store.create_profile(example_profile())
    store.create_fleet("pis", "raspberry-pi-4", RolloutPolicy())
    device, _ = store.register_device("pis", "sn-1")
    costly = DeviceStatus(SHA, 3.25, "1.22.0", profiling_cost=EnergyCost(1.0, 2.0, 0.1))
    request_id = "123e4567-e89b-42d3-a456-426614174000"
    once = store.report_status(device.id, costly, request_id)
    twice = store.report_status(device.id, costly, request_id)
    assert twice.revision == once.revision == 2
    assert twice.profiling_cost_total == EnergyCost(1.0, 2.0, 0.1)
    # Another report (another id) with the same cost is counted: each boot profiles anew.
    third = store.report_status(device.id, costly, "223e4567-e89b-42d3-a456-426614174000")
    assert third.revision == 3 and third.profiling_cost_total.cpu_seconds == 2.0


def test_profile_constraints_are_checked_before_storing(store: RegistryStore) -> None:
    spec = example_profile()
    with pytest.raises(InvalidArgumentError, match="latency_budget_ms must be positive"):
        dataclasses.replace(spec, constraints=Constraints(0.0, 1, 1))
    with pytest.raises(InvalidArgumentError, match=r"profile\.name .Pi 4. is not a valid name"):
        store.create_profile(dataclasses.replace(spec, name="Pi 4"))
