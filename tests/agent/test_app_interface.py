"""How an application on the device uses the model: `STATE/current.onnx` links the model
that passed its boot, and the `--on-model` hook is told of each one."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from ofa_fleet.agent.app_interface import LINK_NAME, AppInterface, ModelReady
from ofa_fleet.errors import InvalidArgumentError
from tests.agent.fleet import Fleet, sha256
from tests.agent.test_model_updates import running, wait_for

# The hook: appends what it was told, one JSON line per call.
HOOK = """
import json, os, sys
told = {k: v for k, v in os.environ.items() if k.startswith("OFA_FLEET_")}
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(told) + "\\n")
"""


def hook_command(tmp_path: Path) -> tuple[str, Path]:
    script, told = tmp_path / "hook.py", tmp_path / "told.jsonl"
    script.write_text(HOOK)
    return f"{sys.executable} {script} {told}", told


def calls(told: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in told.read_text().splitlines()] if told.exists() else []


def test_a_boot_links_its_model_and_tells_the_hook(
    fleet: Fleet, model_a: bytes, tmp_path: Path
) -> None:
    command, told = hook_command(tmp_path)
    sha = fleet.publish(model_a)
    state = tmp_path / "device"
    report = fleet.boot(state, on_model=command).boot
    link = state / LINK_NAME
    assert link.is_symlink() and not os.readlink(link).startswith("/")  # relative
    assert link.read_bytes() == model_a
    ort.InferenceSession(str(link), providers=["CPUExecutionProvider"])  # what an app does
    (call,) = calls(told)
    assert call["OFA_FLEET_MODEL_SHA256"] == sha == report.model_sha256
    assert Path(call["OFA_FLEET_MODEL_PATH"]).read_bytes() == model_a
    assert call["OFA_FLEET_MODEL_LINK"] == str(link.absolute())
    assert (
        call["OFA_FLEET_MODEL_ARCH"] == report.arch
        and call["OFA_FLEET_PROFILE"] == "raspberry-pi-4"
    )


def test_a_running_agent_relinks_and_tells_the_hook_of_each_new_model(
    fleet: Fleet, model_a: bytes, model_b: bytes, tmp_path: Path
) -> None:
    command, told = hook_command(tmp_path)
    old = fleet.publish(model_a)
    state = tmp_path / "device"
    with running(fleet, state, on_model=command) as device:
        wait_for(lambda: len(calls(told)) == 1, "the hook told of the first model", device)
        opened = (state / LINK_NAME).open("rb")  # an application holding the old model
        new = fleet.publish(model_b, seed=1)
        wait_for(lambda: len(calls(told)) == 2, "the hook told of the new model", device)
        device.stop()
    assert [c["OFA_FLEET_MODEL_SHA256"] for c in calls(told)] == [old, new]
    assert sha256((state / LINK_NAME).read_bytes()) == new
    with opened:
        assert opened.read() == model_a  # still readable: the update never rewrote it


def test_a_failing_or_hanging_hook_is_logged_and_changes_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ofa_fleet.agent")
    model = tmp_path / "models" / ("ab" * 32 + ".onnx")
    model.parent.mkdir()
    model.write_bytes(b"model")
    ready = ModelReady("ab" * 32, "arch", "p", model)
    failing = AppInterface(
        tmp_path, f"{sys.executable} -c 'import sys; print(\"no\"); sys.exit(3)'"
    )
    asyncio.run(failing.model_ready(ready))
    (failed,) = [r for r in caplog.records if r.getMessage() == "model hook failed"]
    assert failed.exit_code == 3 and "no" in failed.output  # type: ignore[attr-defined]
    hanging = AppInterface(
        tmp_path, f"{sys.executable} -c 'import time; time.sleep(60)'", hook_seconds=0.5
    )
    asyncio.run(hanging.model_ready(ready))
    assert [r for r in caplog.records if r.getMessage() == "model hook timed out"]
    assert (tmp_path / LINK_NAME).read_bytes() == b"model"
    # The same model again: relinked as it was, the hook not run again.
    asyncio.run(failing.model_ready(ready))
    assert len([r for r in caplog.records if r.getMessage() == "model hook failed"]) == 1


@pytest.mark.parametrize(("command", "words"), [("", "names no command"), ("'open", "split")])
def test_a_hook_that_cannot_be_a_command_is_refused(command: str, words: str) -> None:
    with pytest.raises(InvalidArgumentError, match=words):
        AppInterface(Path("."), command)
