"""The reconciler's queue: a profile waits there once, and a reason to force a new model
given while it waits is kept (an operator's Respecialize after a change in the feed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ofa_fleet.delivery.reconcile.reconciler import Reconciler
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.delivery.store.specializations import Specializations
from tests.delivery.conftest import blob_store, open_database


def test_a_forced_reason_given_while_queued_is_kept_and_each_profile_looked_at_once(
    tmp_path: Path,
) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'delivery.db'}")
    store = ModelStore(database, blob_store("files", database, tmp_path / "blobs"))
    signer = ModelSigner.load_or_create(tmp_path / "signing.key")
    looked_at: list[tuple[str, str]] = []

    async def scenario() -> None:
        # No registry or search is reached: the queue is all this test runs.
        reconciler = Reconciler(store, Specializations(database), signer, None, None, "token")  # type: ignore[arg-type]

        async def reconcile(name: str, forced_reason: str = "") -> None:
            looked_at.append((name, forced_reason))

        reconciler.reconcile = reconcile  # type: ignore[method-assign]
        reconciler.wake("camera")  # a change in the feed
        reconciler.wake("camera", "operator")  # then Respecialize, while it waits
        reconciler.wake("raspberry-pi-4")
        reconciler.wake("camera")  # still queued: not a second look
        worker = asyncio.create_task(reconciler._work())
        while len(looked_at) < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # nothing else is queued
        worker.cancel()

    try:
        asyncio.run(scenario())
    finally:
        database.close()
    assert looked_at == [("camera", "operator"), ("raspberry-pi-4", "")]
