"""The packages' layering, as the README's layout section draws it, read from the code.

A package may import only packages of a lower layer, so the import graph between
packages has no cycle and every arrow points down. Imports under ``TYPE_CHECKING`` are
annotations only and do not count; imports inside functions do (they run). The device
side is checked twice: by the packages the agent names, and by what importing it
actually loads.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[1] / "services" / "ofa_fleet"

# Lower layers first. A new package must be placed here (the test says so).
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"errors", "v1"}),
    frozenset({"storage", "data", "console", "inference"}),
    frozenset({"carbon", "core"}),
    frozenset({"contract", "hardware", "subnet"}),
    frozenset({"serving", "training"}),
    frozenset({"predictors"}),
    frozenset({"registry", "agent"}),
    frozenset({"search", "fleet"}),
    frozenset({"delivery", "client"}),
    frozenset({"stack"}),
    frozenset({"cli"}),
)
LAYER_OF = {package: level for level, packages in enumerate(LAYERS) for package in packages}

# What runs on a device: the agent and what it may stand on. No server package.
DEVICE_SIDE = frozenset(
    {"agent", "contract", "inference", "carbon", "serving", "storage", "errors", "v1"}
)
SERVER_LIBRARIES = ("torch", "ray", "sqlalchemy", "sklearn", "alembic", "matplotlib")
# Pure modules of server packages that a device runs to measure its own latency table:
# the search space and its layers' shapes, the table, the profiles it belongs to, the
# layer profiler. Each may import only device-side packages and modules of this set.
DEVICE_SAFE_MODULES = frozenset(
    {
        "ofa_fleet.core",
        "ofa_fleet.core.arch",
        "ofa_fleet.core.complexity",
        "ofa_fleet.core.layers",
        "ofa_fleet.core.onnx_graph",
        "ofa_fleet.core.opset",
        "ofa_fleet.core.space",
        "ofa_fleet.hardware",
        "ofa_fleet.hardware.latency_table",
        "ofa_fleet.hardware.profile",
        "ofa_fleet.hardware.profile_file",
        "ofa_fleet.hardware.units",
        "ofa_fleet.predictors",
        "ofa_fleet.predictors.device_profiling",
        "ofa_fleet.predictors.onnx_blocks",
    }
)


def package_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ofa_fleet" and len(parts) > 1 else None


def imported_modules(path: Path) -> list[str]:
    """The absolute ``ofa_fleet`` modules `path` imports, outside ``TYPE_CHECKING`` blocks."""
    tree = ast.parse(path.read_text(), filename=str(path))
    annotation_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            annotation_only |= {id(inner) for stmt in node.body for inner in ast.walk(stmt)}
    modules = []
    for node in ast.walk(tree):
        if id(node) in annotation_only:
            continue
        if isinstance(node, ast.ImportFrom):
            assert not node.level, f"{path}: relative import; the project imports absolutely"
            modules.append(node.module or "")
        elif isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
    return [m for m in modules if m == "ofa_fleet" or m.startswith("ofa_fleet.")]


def package_imports() -> dict[tuple[str, str], list[str]]:
    """(importer, imported) package pairs, each with the import lines that make it."""
    edges: dict[tuple[str, str], list[str]] = defaultdict(list)
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        source = package_of(module)
        if source is None or source == "v1" or "migrations" in path.parts:
            continue
        for imported in imported_modules(path):
            target = package_of(imported)
            if target is not None and target != source:
                edges[(source, target)].append(f"{module} imports {imported}")
    return edges


def project_packages() -> set[str]:
    names = {p.name for p in PACKAGE_ROOT.iterdir() if (p / "__init__.py").is_file()}
    return names | {p.stem for p in PACKAGE_ROOT.glob("*.py") if p.stem != "__init__"}


def test_every_package_has_a_layer() -> None:
    unplaced = project_packages() - LAYER_OF.keys()
    assert not unplaced, f"place {sorted(unplaced)} in LAYERS (and the README's layout)"
    gone = LAYER_OF.keys() - project_packages()
    assert not gone, f"LAYERS names packages that no longer exist: {sorted(gone)}"


def test_every_import_between_packages_points_down() -> None:
    upward = [
        f"{a} (layer {LAYER_OF[a]}) -> {b} (layer {LAYER_OF[b]}): {lines[0]}"
        for (a, b), lines in sorted(package_imports().items())
        if LAYER_OF[b] >= LAYER_OF[a]
    ]
    assert not upward, "imports that do not point down:\n" + "\n".join(upward)


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The graph reader finds lazy imports and skips annotation-only ones."""
    source = tmp_path / "probe.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ofa_fleet.cli.main import main\n"
        "def f():\n"
        "    import ofa_fleet.stack.demo\n"
        "    from ofa_fleet.delivery.serve import servicer\n"
    )
    assert imported_modules(source) == ["ofa_fleet.stack.demo", "ofa_fleet.delivery.serve"]


def device_allowed(module: str) -> bool:
    return package_of(module) in DEVICE_SIDE or module in DEVICE_SAFE_MODULES


def module_path(module: str) -> Path:
    relative = Path(*module.split(".")[1:])
    package = PACKAGE_ROOT / relative / "__init__.py"
    return package if package.is_file() else PACKAGE_ROOT / relative.with_suffix(".py")


def test_the_agent_imports_only_device_side_code() -> None:
    """Device-side packages import device-side packages, or the pure modules of server
    packages listed in DEVICE_SAFE_MODULES; and those import nothing else."""
    device_modules = [
        ".".join(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
        for path in sorted(PACKAGE_ROOT.rglob("*.py"))
        if path.relative_to(PACKAGE_ROOT).parts[0] in DEVICE_SIDE
    ]
    device_modules = [m.removesuffix(".__init__") for m in device_modules]
    server_imports = [
        f"{module} imports {imported}"
        for module in [*device_modules, *sorted(DEVICE_SAFE_MODULES)]
        for imported in imported_modules(module_path(module))
        if not device_allowed(imported) and imported != "ofa_fleet"
    ]
    assert not server_imports, "the device side imports server code:\n" + "\n".join(server_imports)


@pytest.mark.parametrize(
    "entry",
    ["ofa_fleet.agent.runner", "ofa_fleet.agent.boot", "ofa_fleet.predictors.device_profiling"],
)
def test_importing_the_agent_loads_no_server_library(entry: str) -> None:
    loaded = modules_loaded_by(entry)
    libraries = [m for m in loaded if m.split(".")[0] in SERVER_LIBRARIES]
    assert not libraries, f"importing {entry} loads {libraries}"
    server_modules = [m for m in loaded if package_of(m) is not None and not device_allowed(m)]
    assert not server_modules, f"importing {entry} loads {server_modules}"


def test_the_python_client_loads_no_server_library() -> None:
    """A script that only talks to the services (`ofa_fleet.client`) pulls no torch, Ray
    or database library into its process."""
    loaded = modules_loaded_by("ofa_fleet.client")
    libraries = [m for m in loaded if m.split(".")[0] in SERVER_LIBRARIES]
    assert libraries == [], f"importing ofa_fleet.client loads {libraries}"


def modules_loaded_by(entry: str) -> list[str]:
    """What importing `entry` in a fresh interpreter loads: our modules and any server
    library's."""
    probe = (
        f"import json, sys, {entry}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('ofa_fleet.')"
        " or m.split('.')[0] in sys.argv[1:])))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *SERVER_LIBRARIES],
        check=True,
        capture_output=True,
        text=True,
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded
