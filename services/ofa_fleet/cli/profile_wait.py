"""`profiles create|update --wait`: stay until delivery has a verdict on each profile.

The registry stores a profile at once, but whether any subnet fits it is known only when
delivery's reconciler has asked search. An operator (or a pipeline) who wants to know
then and there waits: each profile's state at delivery is read until it speaks of the
revision just written, and is either a model (CURRENT) or a refusal (INFEASIBLE, with
search's reason). A profile still failing (search down, say) or pending when the wait
ends is reported as such.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from ofa_fleet.serving.delivery_client import DeliveryClient
from ofa_fleet.v1 import delivery_pb2

POLL_SECONDS = 0.5
SETTLED = {
    delivery_pb2.SPECIALIZATION_STATE_CURRENT: "current",
    delivery_pb2.SPECIALIZATION_STATE_INFEASIBLE: "infeasible",
}


@dataclass(frozen=True)
class Verdict:
    profile: str
    revision: int
    state: str  # current, infeasible, failing or pending (the last two: not settled in time)
    sha256: str = ""
    last_error: str = ""

    @property
    def problem(self) -> str | None:
        """What an operator must act on, in words; None for a model."""
        if self.state == "current":
            return None
        reason = f": {self.last_error}" if self.last_error else ""
        return f"profile {self.profile} (revision {self.revision}) is {self.state}{reason}"

    def to_dict(self) -> dict[str, object]:
        return {
            "profile": self.profile,
            "revision": self.revision,
            "state": self.state,
            "sha256": self.sha256,
            "last_error": self.last_error,
        }


async def wait_for_verdicts(
    delivery: DeliveryClient, revisions: dict[str, int], seconds: float
) -> list[Verdict]:
    """Each profile's verdict for (at least) the revision named, waiting `seconds` at most."""
    deadline = time.monotonic() + seconds
    verdicts: dict[str, Verdict] = {}
    while True:
        for name, revision in revisions.items():
            if name in verdicts and verdicts[name].state in SETTLED.values():
                continue
            verdicts[name] = _verdict(await delivery.profile_models(name, 1), name, revision)
        settled = all(v.state in SETTLED.values() for v in verdicts.values())
        if settled or time.monotonic() >= deadline:
            return [verdicts[name] for name in revisions]
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _verdict(answer: delivery_pb2.GetProfileModelsResponse, name: str, revision: int) -> Verdict:
    state = SETTLED.get(answer.state)
    if state is not None and answer.state_profile_revision >= revision:
        sha256 = answer.current.sha256 if state == "current" else ""
        return Verdict(name, revision, state, sha256, answer.last_error if not sha256 else "")
    failing = answer.state == delivery_pb2.SPECIALIZATION_STATE_FAILING
    return Verdict(name, revision, "failing" if failing else "pending", "", answer.last_error)
