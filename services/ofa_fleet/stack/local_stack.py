"""The whole system on one machine: registry, search and delivery as three servers.

Each service runs as its own ``ofa-fleet serve`` process on a loopback port, exactly as
it would run anywhere else (one code path), with defaults that need no setup: SQLite
files, the model folder and the signing key under the workdir, an operator token made
once and kept there (mode 0600), and a supernet trained on ``digits`` on first use.
Delivery runs its reconciler, so every profile created in the registry gets a model.

They start in dependency order (search looks profiles up in the registry; delivery calls
both), each only once the one before answers its health check, and stop in the reverse
order. `LocalStack` is a context manager: ``with LocalStack(settings) as stack:`` gives
running servers and always stops them, killing what does not stop in time. A workdir
serves one stack at a time: a second `start` on it is refused (`DirectoryLock`), since two
registries on one SQLite file and two writers of one log corrupt both.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ofa_fleet.errors import NotFoundError
from ofa_fleet.serving.ports import DELIVERY_PORT, REGISTRY_PORT, SEARCH_PORT
from ofa_fleet.stack.health import (
    ChildExitedError,
    child_exited,
    logged_metrics_address,
    wait_until_serving,
)
from ofa_fleet.stack.ports import ensure_free
from ofa_fleet.stack.processes import ChildProcess
from ofa_fleet.stack.secrets_file import ensure_token_file
from ofa_fleet.stack.supernet import ensure_predictor, ensure_supernet
from ofa_fleet.storage.directory_lock import DirectoryLock

# Environment a child must not inherit: the stack is local, whatever the shell says.
HIDDEN_ENV = ("RAY_ADDRESS", "OFA_FLEET_OPERATOR_TOKEN")
LOCK_NAME = "up.lock"  # one stack per workdir, held while its servers run


@dataclass(frozen=True)
class StackSettings:
    """Where the stack keeps its files and which ports it listens on.

    Attributes:
        workdir: databases, models, signing key, token, logs, the supernet.
        checkpoint: a supernet to serve instead of ``WORKDIR/supernet.ckpt`` (trained on
            first use); its accuracy predictor is fitted beside it when missing.
        ports: 0 picks a free port (the address is read from the server's log).
        start_timeout_seconds: per server, from its start to SERVING.
        server_grace_seconds: what each server gives in-flight calls on SIGTERM.
        stop_timeout_seconds: per server, from SIGTERM to SIGKILL.
    """

    workdir: Path = Path("runs/up")
    checkpoint: Path | None = None
    host: str = "127.0.0.1"
    registry_port: int = REGISTRY_PORT
    search_port: int = SEARCH_PORT
    delivery_port: int = DELIVERY_PORT
    search_workers: int | None = None
    epochs_per_phase: int | None = None
    start_timeout_seconds: float = 300.0
    server_grace_seconds: float = 5.0
    stop_timeout_seconds: float = 30.0

    @property
    def checkpoint_path(self) -> Path:
        return self.checkpoint or self.workdir / "supernet.ckpt"

    @property
    def token_file(self) -> Path:
        return self.workdir / "operator-token"

    @property
    def log_dir(self) -> Path:
        return self.workdir / "logs"


@dataclass(frozen=True)
class StackAddresses:
    registry: str
    search: str
    delivery: str


class LocalStack:
    """Three running servers; `start` then `watch`, and `stop` (or use ``with``)."""

    def __init__(self, settings: StackSettings | None = None) -> None:
        self.settings = settings or StackSettings()
        self.children: list[ChildProcess] = []
        self._addresses: dict[str, str] = {}
        self._metrics: dict[str, str] = {}
        self.token = ""
        self._lock = DirectoryLock(
            self.settings.workdir,
            LOCK_NAME,
            "ofa-fleet up",
            "one stack per workdir; stop it (Ctrl-C in its shell, or kill its pid) or give "
            "this one another --workdir",
        )

    @property
    def addresses(self) -> StackAddresses:
        return StackAddresses(**self._addresses)

    @property
    def metrics_addresses(self) -> dict[str, str]:
        """Where each server serves Prometheus /metrics (host:port; a free port each)."""
        return dict(self._metrics)

    @property
    def token_file(self) -> Path:
        return self.settings.token_file

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Prepare what is missing, then start the servers; on any failure none is left."""
        s = self.settings
        self._lock.acquire()  # before anything in the workdir is touched
        try:
            self._check_ports()
            self.token = ensure_token_file(s.token_file)
            if s.checkpoint is None:
                ensure_supernet(s.checkpoint_path, s.epochs_per_phase)
            elif not s.checkpoint.is_file():
                raise NotFoundError(f"--checkpoint {s.checkpoint} does not exist")
            else:
                ensure_predictor(s.checkpoint)
            self._start_all()
        except BaseException:
            self.stop()
            raise

    def watch(self, poll_seconds: float = 0.5) -> ChildExitedError:
        """Block until a server exits; the error names it (its log's end in the message)."""
        while True:
            dead = self.exited()
            if dead is not None:
                return dead
            time.sleep(poll_seconds)

    def exited(self) -> ChildExitedError | None:
        """The first server found to have exited, as an error to raise, else None."""
        for child in self.children:
            code = child.exit_code()
            if code is not None:
                return child_exited(child, code)
        return None

    def stop(self) -> dict[str, int | None]:
        """Stop every server, the last started first; their exit codes by name."""
        codes: dict[str, int | None] = {}
        while self.children:
            child = self.children.pop()
            codes[child.name] = child.stop(self.settings.stop_timeout_seconds)
        self._lock.release()  # only once no server of this stack runs
        return codes

    def _check_ports(self) -> None:
        s = self.settings
        ensure_free(s.host, s.registry_port, "registry", "--registry-port")
        ensure_free(s.host, s.search_port, "search", "--search-port")
        ensure_free(s.host, s.delivery_port, "delivery", "--delivery-port")

    def _start_all(self) -> None:
        s = self.settings
        registry = self._start(
            "registry",
            s.registry_port,
            "--registry-port",
            "--db",
            f"sqlite:///{(s.workdir / 'registry.db').resolve()}",
        )
        workers = ("--workers", str(s.search_workers)) if s.search_workers else ()
        search = self._start(
            "search",
            s.search_port,
            "--search-port",
            *("--checkpoint", str(s.checkpoint_path.resolve())),
            *("--registry", registry),
            *workers,
        )
        self._start(
            "delivery",
            s.delivery_port,
            "--delivery-port",
            *("--db", f"sqlite:///{(s.workdir / 'delivery.db').resolve()}"),
            *("--blobs", str((s.workdir / "models").resolve())),
            *("--signing-key", str((s.workdir / "signing.key").resolve())),
            *("--registry", registry, "--search", search),
        )

    def _start(self, service: str, port: int, flag: str, *args: str) -> str:
        s = self.settings
        ensure_free(s.host, port, service, flag)  # again: training may have taken minutes
        child = ChildProcess(
            service,
            [
                *(sys.executable, "-m", "ofa_fleet.cli.main", "serve", service),
                *("--host", s.host, "--port", str(port)),
                *("--operator-token-file", str(s.token_file.resolve())),
                *("--grace-seconds", str(s.server_grace_seconds)),
                *("--metrics-port", "0"),
                *args,
            ],
            s.log_dir / f"{service}.log",
            {k: v for k, v in os.environ.items() if k not in HIDDEN_ENV},
        )
        others = list(self.children)
        self.children.append(child)
        child.start()
        address = wait_until_serving(child, s.start_timeout_seconds, others)
        self._addresses[service] = address
        self._metrics[service] = logged_metrics_address(child)
        return address
