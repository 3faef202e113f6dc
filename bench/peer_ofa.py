"""MIT's own ``ofa`` package, the peer the benchmarks compare against, made importable.

Shared by ``bench/train_throughput.py`` (its supernet), ``bench/search_specialize.py``
(its evolutionary search) and ``tests/core/ofa_reference.py`` (the network an imported
supernet must match), so all compare against the same pinned release (a dev dependency),
imported the same way:

- If ``ofa`` is not importable, it is installed once with ``pip install --no-deps
  --target bench/.peer/ofa-<version>`` (a cache folder that holds its own ``.gitignore``)
  and that folder is put on ``sys.path``.
- The package imports two libraries the benchmarks never use: torchvision, for its data
  loaders, and tqdm, for progress bars (only drawn with ``verbose=True``). Where they are
  absent, empty stand-in modules take their place while the peer imports, and leave
  ``sys.modules`` again afterwards, so nothing else in the process mistakes them for the
  real libraries. A real, working library is used instead whenever there is one.

Without the peer (no network) `load_peer` returns ``available=False`` and a reason; the
benchmarks then print "unavailable" in the peer's columns and still run.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PEER_PACKAGE = "ofa"
PEER_VERSION = "0.1.0.post202307202001"
PEER_CACHE = Path(__file__).resolve().parent / ".peer"
PEER_DIR = PEER_CACHE / f"{PEER_PACKAGE}-{PEER_VERSION}"


@dataclass
class Peer:
    """The outcome of importing the peer: the requested objects, or why there are none.

    Attributes:
        objects: each requested ``module:Name`` target's object, by ``Name``.
        stand_ins: the libraries replaced by empty stand-ins during the import.
    """

    available: bool
    reason: str = ""
    version: str | None = None
    location: str | None = None
    stand_ins: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    objects: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": f"{PEER_PACKAGE}=={PEER_VERSION}",
            "imports": list(self.targets),
            "available": self.available,
            "reason": self.reason,
            "version": self.version,
            "location": self.location,
            "torchvision_stand_ins": "torchvision" in self.stand_ins,
            "stand_ins": list(self.stand_ins),
        }


# --------------------------------------------------------------------------- stand-ins


def _torchvision_works() -> bool:
    if importlib.util.find_spec("torchvision") is None:
        return False
    try:
        importlib.import_module("torchvision.transforms.functional")
    except Exception:  # a torchvision built for another torch fails in many ways
        for name in [n for n in sys.modules if n.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        return False
    return True


@contextmanager
def _installed(modules: list[types.ModuleType]) -> Iterator[None]:
    """Put ``modules`` in ``sys.modules`` for the block, and take exactly them out after."""
    stand_ins = {m.__name__: m for m in modules}
    sys.modules.update(stand_ins)
    try:
        yield
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


@contextmanager
def torchvision_stand_ins() -> Iterator[bool]:
    """STAND-INS, NOT TORCHVISION: empty modules in ``sys.modules`` while ``ofa`` imports.

    The peer's networks and search need no torchvision, but importing them runs
    ``ofa/utils/__init__``, which imports its data-loader helpers, whose module body does
    ``import torchvision.transforms.functional as F``, ``import torchvision.transforms``
    and subclasses ``transforms.RandomResizedCrop``. Those three names are all its import
    chain touches (``torchvision.datasets`` is only imported by its ImageNet data provider,
    which nothing here imports). The stand-ins carry no code: the one class exists to be
    subclassed and refuses to be built.

    Yields whether the stand-ins were used.
    """
    if _torchvision_works():
        yield False
        return

    class RandomResizedCrop:  # stand-in: subclassed by ofa at import time, never built here
        def __init__(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("torchvision stand-in from bench/peer_ofa.py: no data")

    root = types.ModuleType("torchvision", "Stand-in (bench/peer_ofa.py): empty.")
    transforms = types.ModuleType("torchvision.transforms", "Stand-in: empty.")
    functional = types.ModuleType("torchvision.transforms.functional", "Stand-in: empty.")
    root.__path__ = []  # packages, so the dotted imports resolve to these entries
    transforms.__path__ = []
    transforms.RandomResizedCrop = RandomResizedCrop  # type: ignore[attr-defined]
    transforms.functional = functional  # type: ignore[attr-defined]
    root.transforms = transforms  # type: ignore[attr-defined]
    with _installed([root, transforms, functional]):
        yield True


@contextmanager
def tqdm_stand_in() -> Iterator[bool]:
    """STAND-IN, NOT TQDM: a progress bar that draws nothing, while ``ofa`` imports.

    The peer's ``EvolutionFinder`` and accuracy dataset do ``from tqdm import tqdm`` at
    import time; the search wraps its generations in ``tqdm(..., disable=not verbose)``
    and calls ``set_postfix`` and ``update`` on it. The benchmarks run it with
    ``verbose=False``, where the real tqdm draws nothing either. Yields whether it was used.
    """
    if importlib.util.find_spec("tqdm") is not None:
        yield False
        return

    class SilentBar:
        """Accepts what tqdm accepts and does nothing; iterates what it wraps."""

        def __init__(self, iterable: Any = None, *args: object, **kwargs: object) -> None:
            self.iterable = iterable

        def __iter__(self) -> Iterator[Any]:
            return iter(self.iterable if self.iterable is not None else ())

        def __enter__(self) -> SilentBar:
            return self

        def __exit__(self, *exc: object) -> None:
            return None

        def set_postfix(self, *args: object, **kwargs: object) -> None:
            return None

        def update(self, n: float = 1) -> None:
            return None

        def close(self) -> None:
            return None

    module = types.ModuleType("tqdm", "Stand-in (bench/peer_ofa.py): draws nothing.")
    module.tqdm = SilentBar  # type: ignore[attr-defined]
    with _installed([module]):
        yield True


@contextmanager
def peer_stand_ins() -> Iterator[tuple[str, ...]]:
    """Every stand-in the peer's import needs here; yields the names of those used."""
    with ExitStack() as stack:
        used = []
        if stack.enter_context(torchvision_stand_ins()):
            used.append("torchvision")
        if stack.enter_context(tqdm_stand_in()):
            used.append("tqdm")
        yield tuple(used)


# --------------------------------------------------------------------------- install


def _install_peer(log: Callable[[str], None]) -> str | None:
    """pip-install the peer into PEER_DIR; returns an error message, or None."""
    PEER_CACHE.mkdir(parents=True, exist_ok=True)
    ignore = PEER_CACHE / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# Cache of the bench scripts (bench/peer_ofa.py): never committed.\n*\n")
    staging = PEER_CACHE / f"{PEER_DIR.name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--no-deps",
        "--no-input",
        "--quiet",
        "--disable-pip-version-check",
        "--target",
        str(staging),
        f"{PEER_PACKAGE}=={PEER_VERSION}",
    ]
    log(f"installing the peer: {' '.join(command[1:])}")
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"pip could not run: {exc}"
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"pip install failed (exit {done.returncode}): {' | '.join(tail)}"
    shutil.rmtree(PEER_DIR, ignore_errors=True)
    staging.rename(PEER_DIR)
    return None


def _make_importable(install: bool, log: Callable[[str], None]) -> str | None:
    """Make ``import ofa`` work (environment, else cache, else install); error or None."""
    if importlib.util.find_spec(PEER_PACKAGE) is not None:
        return None
    if not (PEER_DIR / PEER_PACKAGE).is_dir():
        if not install:
            return f"{PEER_PACKAGE} is not installed"
        error = _install_peer(log)
        if error is not None:
            return error
    if str(PEER_DIR) not in sys.path:
        sys.path.insert(0, str(PEER_DIR))
    importlib.invalidate_caches()
    if importlib.util.find_spec(PEER_PACKAGE) is None:
        return f"{PEER_PACKAGE} is not importable from {PEER_DIR}"
    return None


def load_peer(*targets: str, install: bool = True, log: Callable[[str], None] = print) -> Peer:
    """Import each ``"module.path:Name"`` of ``targets`` from the peer package."""
    with peer_stand_ins() as stand_ins:
        error = _make_importable(install, log)
        if error is not None:
            return Peer(False, error, targets=targets)
        objects: dict[str, Any] = {}
        for target in targets:
            module_name, _, name = target.partition(":")
            try:
                objects[name] = getattr(importlib.import_module(module_name), name)
            except Exception as exc:
                return Peer(False, f"importing {target} failed: {exc}", targets=targets)
    try:
        version: str | None = importlib.metadata.version(PEER_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = None
    root = sys.modules[PEER_PACKAGE].__file__ or ""
    return Peer(
        True,
        version=version,
        location=str(Path(root).parent.parent),
        stand_ins=stand_ins,
        targets=targets,
        objects=objects,
    )
