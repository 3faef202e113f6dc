"""bench/fleet_load.py on a small fleet: every phase runs against real servers, and its
figures add up (the 10,000-device run is the bench's own)."""

from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import fleet_load  # noqa: E402

from tests.cli_runner import ofa_fleet  # noqa: E402


def model(seed: int) -> dict:
    from tests.agent.onnx_models import tiny_onnx

    onnx = tiny_onnx(seed=seed)
    return {
        "onnx": onnx,
        "sha256": hashlib.sha256(onnx).hexdigest(),
        "bytes": len(onnx),
        "arch": "r24_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3",
        "supernet_version": "0123456789abcdef",
    }


def test_merged_figures_add_up():
    one = {"seconds": [0.1], "errors": {"UNAVAILABLE": 1}, "bytes": 10, "messages": 1}
    two = {"seconds": [0.2, 0.3], "errors": {"UNAVAILABLE": 2}, "bytes": 5, "messages": 2}
    merged = fleet_load.merge_rpcs([{"rpcs": {"ReadModel": one}}, {"rpcs": {"ReadModel": two}}])
    assert merged["ReadModel"]["errors"] == {"UNAVAILABLE": 3}
    (row,) = fleet_load.rpc_rows(merged, {"ReadModel": 2.0})
    assert (row["calls"], row["calls_per_s"], row["bytes_per_s"]) == (3, 1.5, 7.5)


@pytest.mark.slow
@pytest.mark.integration
def test_a_small_fleet_boots_watches_and_hears_of_a_rollback(tmp_path: Path):
    args = fleet_load.parser().parse_args(
        ["--devices", "12", "--processes", "2", "--channels", "2", "--hold-seconds", "1",
         "--heartbeat-seconds", "0.5"]
    )  # fmt: skip
    result = fleet_load.run_fleet(args, tmp_path, current=model(1), earlier=model(2))
    boot = result["boot"]
    assert boot["booted"] == boot["verified"] == 12 and boot["failed"] == {}
    assert result["watch"]["watching"] == 12 and result["hold"]["heartbeats"] > 0
    assert result["push"]["told"] == 12 and result["push"]["all_told_s"] is not None
    rows = {row["rpc"]: row for row in result["rpcs"]}
    for rpc in ("RegisterDevice", "GetModelManifest", "ReadModel", "ReportStatus"):
        assert rows[rpc]["calls"] == 12 and rows[rpc]["errors"] == {}, rows[rpc]
    assert rows["ReadModel"]["bytes"] == 12 * model(1)["bytes"]
    assert rows["WatchModel"]["messages"] == 24  # the model it runs, then the rollback


@pytest.mark.slow
@pytest.mark.integration
def test_a_staged_push_reaches_the_canaries_first_then_everyone(checkpoint: Path, tmp_path: Path):
    """The staged push runs the real path: the budget tightened, search makes a new
    model, the reconciler stores it, canaries are told and report, then the rest."""
    supernet = tmp_path / "supernet.ckpt"
    shutil.copy(checkpoint, supernet)
    ofa_fleet(  # a small predictor beside it: search would otherwise fit one of 100
        *("predictor", "fit", "--checkpoint", str(supernet), "--samples", "12"),
        *("--out", f"{supernet}.predictor"),
    )
    args = fleet_load.parser().parse_args(
        ["--devices", "12", "--processes", "2", "--channels", "2", "--hold-seconds", "1",
         "--heartbeat-seconds", "0.5", "--staged", "25", "--min-success-reports", "2",
         "--checkpoint", str(supernet)]
    )  # fmt: skip
    result = fleet_load.run_fleet(args, tmp_path / "run", current=model(1), earlier=model(2))
    assert result["boot"]["verified"] == 12 and result["boot"]["failed"] == {}
    push, staged = result["push"], result["push"]["staged"]
    rollout = staged["rollout"]
    assert rollout["canaries"] == 3  # 25% of 12
    assert rollout["canary"] < rollout["promoted"]
    told = staged["told_s"]
    assert push["told"] == len(told) == 12 and staged["running"] == 12
    assert staged["follow_failed"] == {}
    # The canaries are told when the rollout starts, everyone else once it is promoted
    # (after the canaries reported the new model): no other device before a canary.
    assert max(told[:3]) < min(told[3:])
    rows = {row["rpc"]: row for row in result["rpcs"]}
    assert rows["ReadModel"]["calls"] == rows["ReportStatus"]["calls"] == 24
