"""Respecialize's operations in delivery's database: an attempt ends exactly the operations
open when it began, listings page by a token bound to their filter, and a finished
operation is kept until its retention passes."""

from __future__ import annotations

import grpc
import pytest

from ofa_fleet.contract.operation_names import check_operation_name
from ofa_fleet.delivery.store.operations import OperationFilter, Operations
from ofa_fleet.errors import InvalidArgumentError
from ofa_fleet.storage.database import Database

SHA = "ab" * 32


def test_an_attempt_ends_the_operations_open_when_it_began(database: Database) -> None:
    operations = Operations(database)
    first = operations.start("cams")
    other = operations.start("gates")
    covered = operations.open_for("cams")  # an attempt for cams begins
    assert covered == (first.name,)
    during = operations.start("cams")  # asked while it runs: left for the next attempt
    assert operations.succeed(covered, SHA) == 1
    ended = operations.get(first.name)
    assert ended is not None and ended.done and ended.outcome_sha256 == SHA
    assert ended.ended_us >= ended.created_us and not ended.error_code
    assert [r.name for r in operations.running()] == [other.name, during.name]
    assert operations.succeed(covered, SHA) == 0  # ending twice changes nothing

    reason = "PROFILE_INFEASIBLE"
    code = grpc.StatusCode.FAILED_PRECONDITION
    assert operations.fail(operations.open_for("cams"), code, "x" * 5000, reason) == 1
    failed = operations.get(during.name)
    assert failed is not None and failed.done and failed.error_code == "FAILED_PRECONDITION"
    assert failed.error_reason == reason and len(failed.error_message) == 2000
    assert not failed.outcome_sha256


def test_cancel_ends_a_running_operation_only_and_delete_forgets_it(database: Database) -> None:
    operations = Operations(database)
    record = operations.start("cams")
    cancelled = operations.cancel(record.name)
    assert cancelled is not None and cancelled.done and cancelled.error_code == "CANCELLED"
    assert operations.succeed((record.name,), SHA) == 0  # an ended one keeps its end
    again = operations.cancel(record.name)
    assert again == cancelled
    assert operations.delete(record.name)
    assert operations.get(record.name) is None
    assert operations.cancel(record.name) is None and not operations.delete(record.name)


def test_listings_page_in_creation_order_with_their_filter(database: Database) -> None:
    operations = Operations(database)
    made = [operations.start("cams" if i % 2 else "gates") for i in range(7)]
    operations.succeed((made[1].name, made[2].name), SHA)
    names: list[str] = []
    token = ""
    while True:
        page = operations.page(OperationFilter(), 3, token)
        names += [r.name for r in page.items]
        token = page.next_token
        if not token:
            break
    assert names == [r.name for r in made] == sorted(names)
    cams_running = operations.page(OperationFilter(profile_name="cams", done=False))
    assert [r.name for r in cams_running.items] == [made[3].name, made[5].name]
    done = operations.page(OperationFilter(done=True))
    assert [r.name for r in done.items] == [made[1].name, made[2].name]
    first = operations.page(OperationFilter(profile_name="cams"), 1)
    with pytest.raises(InvalidArgumentError, match="page_token"):
        operations.page(OperationFilter(profile_name="gates"), 1, first.next_token)


def test_finished_operations_are_pruned_after_their_retention(database: Database) -> None:
    operations = Operations(database)
    old = operations.start("cams")
    operations.succeed((old.name,), SHA)
    running = operations.start("cams")
    ended = operations.get(old.name)
    assert ended is not None
    assert operations.prune(ended.ended_us) == 0  # ended at that instant: not before it
    assert operations.prune(ended.ended_us + 1) == 1
    assert operations.get(old.name) is None
    assert operations.get(running.name) is not None  # a running one is never pruned


@pytest.mark.parametrize(
    "name",
    ["", "operations/", "operations/xyz", "ops/" + "0" * 32, "operations/" + "A" * 32],
)
def test_names_not_issued_here_are_refused(name: str) -> None:
    with pytest.raises(InvalidArgumentError, match="operations/ and 32"):
        check_operation_name(name)
