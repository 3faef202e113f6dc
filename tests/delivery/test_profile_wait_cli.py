"""`profiles create|update --wait`: the operator hears delivery's verdict on a profile
then and there: its model, or why no subnet fits, for the revision just written."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml

from ofa_fleet.cli.main import main
from ofa_fleet.delivery.store.specializations import Specializations
from tests.delivery.world import World
from tests.registry.conftest import PROFILES
from tests.server_process import OPERATOR_TOKEN

WHY = "latency: the fastest subnet needs 9.161 ms, the budget is 0.05 ms"


@pytest.fixture
def cli(world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setenv("OFA_FLEET_REGISTRY", world.registry_address)
    monkeypatch.setenv("OFA_FLEET_DELIVERY", world.delivery_address)

    def run(*args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, json.loads(out) if out.strip().startswith("{") else {}, err

    return run


def profile_file(folder: Path, budget_ms: float) -> Path:
    data = yaml.safe_load((PROFILES / "x86-gateway.yaml").read_text())
    data["name"] = "camera"
    data["constraints"]["latency_budget_ms"] = budget_ms
    path = folder / f"camera-{budget_ms}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def later(action, seconds: float = 0.5) -> threading.Timer:  # type: ignore[no-untyped-def]
    """What delivery's reconciler would record, a moment after the profile is written."""
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_create_waits_for_the_verdict_and_update_for_its_own_revision(
    cli, world: World, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ledger = Specializations(world.store.database)
    timer = later(lambda: ledger.mark_infeasible("camera", 1, "v1", WHY))
    code, out, _ = cli("profiles", "create", str(profile_file(tmp_path, 0.05)), "--wait", "30",
                       "--json")  # fmt: skip
    timer.join()
    assert code == 3
    (verdict,) = out["specializations"]
    assert (verdict["profile"], verdict["revision"], verdict["state"]) == (
        "camera",
        1,
        "infeasible",
    )
    assert verdict["last_error"] == WHY and out["profiles"][0]["name"] == "camera"

    def specialized() -> None:
        world.add_model(3, profile="camera")
        ledger.mark_current("camera", 2, "v1")

    # Revision 1's refusal is not revision 2's verdict: the wait goes on until it comes.
    timer = later(specialized, 1.0)
    code, out, err = cli("profiles", "update", str(profile_file(tmp_path, 50.0)), "--wait", "30")
    timer.join()
    assert code == 0, err
    assert f"profile camera: model {world.store.current('camera').sha256}" in err


def test_a_wait_that_ends_first_says_the_profile_is_pending(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, _, err = cli("profiles", "create", str(profile_file(tmp_path, 5.0)), "--wait", "0.3")
    assert code == 3 and "profile camera (revision 1) is pending" in err
    code, _, err = cli("profiles", "update", str(profile_file(tmp_path, 5.0)), "--wait", "-1")
    assert code == 2 and "--wait must be 0-3600 s" in err
