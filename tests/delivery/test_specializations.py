"""What the reconciler's ledger says about a profile's last failure: which revision and
supernet it was for, so a failing profile that changed is asked again at once, and an
infeasible one waits for a change."""

from __future__ import annotations

from ofa_fleet.delivery.store.specializations import (
    BackoffPolicy,
    Specializations,
    SpecializationStatus,
)
from ofa_fleet.storage.database import Database


def test_a_failure_holds_for_its_revision_and_supernet_only(database: Database) -> None:
    ledger = Specializations(database)
    ledger.mark_failing("cam", "UNAVAILABLE: search is down", BackoffPolicy(), 1, "v1")
    state = ledger.get("cam")
    assert state is not None and state.state is SpecializationStatus.FAILING
    assert state.failing_for(1, "v1")  # the same question: wait out the backoff
    assert not state.failing_for(2, "v1")  # the profile changed: ask at once
    assert not state.failing_for(1, "v2")  # so did the supernet
    assert not state.infeasible_for(1, "v1")

    ledger.mark_failing("cam", "internal: boom", BackoffPolicy())  # for no known revision
    state = ledger.get("cam")
    assert state is not None and state.failing_for(7, "v9")  # its backoff holds for all

    ledger.mark_infeasible("cam", 2, "v1", "the fastest subnet needs 9.161 ms")
    state = ledger.get("cam")
    assert state is not None and state.attempts == 3
    assert state.infeasible_for(2, "v1") and not state.infeasible_for(3, "v1")
    assert not state.infeasible_for(2, "v2") and not state.failing_for(2, "v1")
    ledger.mark_pending("cam")
    state = ledger.get("cam")
    assert state is not None and not state.infeasible_for(2, "v1")
