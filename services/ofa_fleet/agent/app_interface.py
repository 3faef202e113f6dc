"""What an application on the device sees: a stable path to the model, and a hook.

The agent downloads, verifies, installs and smoke-tests each model; the application that
runs inference needs two things from it, and only after a model passed all of that:

- **Where the model is.** `STATE/current.onnx` is a symbolic link to the current model's
  file (`models/<sha256>.onnx`, immutable, named by its content), replaced atomically
  (a new link renamed over the old) after each boot that made a model current, never
  while one is being checked. An application opens the link; a file it holds open stays
  readable even after an update removes it, and `current.json` beside it holds the
  signed manifest (sha256, arch, profile, figures).
- **When it changes.** With `--on-model COMMAND`, the agent runs COMMAND (split like a
  shell would, run without one) after each such boot: the first after the agent starts
  and each that changed the model. It gets the model in its environment
  (`OFA_FLEET_MODEL_PATH`, the file; `OFA_FLEET_MODEL_LINK`, the link;
  `OFA_FLEET_MODEL_SHA256`, `OFA_FLEET_MODEL_ARCH`, `OFA_FLEET_PROFILE`), typically to
  signal the application (`systemctl reload app`, `kill -HUP $(cat app.pid)`). It is
  bounded by a timeout; its failure is logged and changes nothing on the device.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
from dataclasses import dataclass
from pathlib import Path

from ofa_fleet.errors import InvalidArgumentError

log = logging.getLogger("ofa_fleet.agent")
LINK_NAME = "current.onnx"
DEFAULT_HOOK_SECONDS = 60.0
OUTPUT_SHOWN = 500  # characters of the hook's output kept in the log when it fails


@dataclass(frozen=True)
class ModelReady:
    """A model that passed its boot: what the application is told."""

    sha256: str
    arch: str
    profile: str
    path: Path  # the model's own file, models/<sha256>.onnx


class AppInterface:
    """Publishes each model that passed its boot to the device's application."""

    def __init__(
        self,
        state_dir: Path,
        on_model: str | None = None,
        hook_seconds: float = DEFAULT_HOOK_SECONDS,
    ) -> None:
        self.link = Path(state_dir) / LINK_NAME
        self.command = _command(on_model)
        if not hook_seconds > 0:
            raise InvalidArgumentError(f"the hook's timeout must be positive, got {hook_seconds}")
        self.hook_seconds = hook_seconds
        self._told = ""  # the model the hook last ran for

    async def model_ready(self, model: ModelReady) -> None:
        """Point the link at `model`, then run the hook if this model is news to it."""
        await asyncio.to_thread(self._relink, model.path)
        if self.command and model.sha256 != self._told:
            self._told = model.sha256
            await self._run_hook(model)

    def _relink(self, target: Path) -> None:
        relative = os.path.relpath(target, self.link.parent)  # the state dir may move
        if self.link.is_symlink() and os.readlink(self.link) == relative:
            return
        temporary = self.link.with_name(f".{LINK_NAME}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(relative)
        os.replace(temporary, self.link)  # atomic: the link is always one model or the other

    async def _run_hook(self, model: ModelReady) -> None:
        env = {
            **os.environ,
            "OFA_FLEET_MODEL_PATH": str(model.path.resolve()),
            "OFA_FLEET_MODEL_LINK": str(self.link.absolute()),
            "OFA_FLEET_MODEL_SHA256": model.sha256,
            "OFA_FLEET_MODEL_ARCH": model.arch,
            "OFA_FLEET_PROFILE": model.profile,
        }
        try:
            process = await asyncio.create_subprocess_exec(
                *self.command,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
        except OSError as error:
            log.error(
                "model hook did not start",
                extra={"command": self.command[0], "error": str(error)},
            )
            return
        try:
            output, _ = await asyncio.wait_for(process.communicate(), self.hook_seconds)
        except TimeoutError:
            process.kill()
            await process.wait()
            log.error(
                "model hook timed out",
                extra={"command": self.command[0], "seconds": self.hook_seconds},
            )
            return
        if process.returncode != 0:
            log.error(
                "model hook failed",
                extra={
                    "command": self.command[0],
                    "exit_code": process.returncode,
                    "output": output.decode(errors="replace")[-OUTPUT_SHOWN:],
                },
            )
            return
        log.info("model hook ran", extra={"command": self.command[0], "model_sha256": model.sha256})


def _command(on_model: str | None) -> list[str]:
    if on_model is None:
        return []
    try:
        words = shlex.split(on_model)
    except ValueError as error:
        raise InvalidArgumentError(f"--on-model {on_model!r} cannot be split: {error}") from None
    if not words:
        raise InvalidArgumentError("--on-model names no command")
    return words
