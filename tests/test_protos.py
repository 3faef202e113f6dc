"""The contract: generated modules match the .proto files, buf lint passes, and nothing
breaks what the last release promised."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import google.api
import google.longrunning
import google.rpc
import pytest

from tests import tools

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "services" / "ofa_fleet" / "v1"


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("generate", ROOT / "protos" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_modules_are_what_the_protos_generate(tmp_path: Path) -> None:
    fresh = _generator().generate(tmp_path)
    assert fresh, "no proto files found"
    names = sorted(p.name for p in fresh)
    committed = sorted(p.name for p in GENERATED.glob("*_pb2*.py*"))
    assert names == committed, "run `make protos`: generated files differ from committed ones"
    for path in fresh:
        assert path.read_bytes() == (GENERATED / path.name).read_bytes(), (
            f"services/ofa_fleet/v1/{path.name} is stale or edited by hand; run `make protos`"
        )


def test_third_party_protos_are_those_of_the_installed_package() -> None:
    """The googleapis protos buf and protoc read are the ones the imported modules were
    made from (the installed googleapis-common-protos), so the two cannot drift apart."""
    api = Path(google.api.__path__[0])
    installed = {f"google/api/{name}": api / name for name in THIRD_PARTY_API}
    installed["google/longrunning/operations.proto"] = (
        Path(google.longrunning.__path__[0]) / "operations_proto.proto"
    )
    installed["google/rpc/status.proto"] = Path(google.rpc.__path__[0]) / "status.proto"
    vendored = ROOT / "protos" / "third_party"
    found = sorted(str(p.relative_to(vendored)) for p in vendored.rglob("*.proto"))
    assert found == sorted(installed)
    for name, source in installed.items():
        assert (vendored / name).read_bytes() == source.read_bytes(), (
            f"protos/third_party/{name} differs from {source}; copy it again"
        )


THIRD_PARTY_API = (
    "annotations.proto",
    "client.proto",
    "field_behavior.proto",
    "http.proto",
    "launch_stage.proto",
    "resource.proto",
)


def test_a_stale_module_is_detected(tmp_path: Path) -> None:
    """The check above can fail: a changed proto yields different modules."""
    generator = _generator()
    copy = tmp_path / "protos"
    (copy / "ofa_fleet" / "v1").mkdir(parents=True)
    for proto in generator.proto_files():
        text = proto.read_text()
        if proto.name == "common.proto":
            text += "\nmessage AddedLater {\n  string field = 1;\n}\n"
        (copy / "ofa_fleet" / "v1" / proto.name).write_text(text)
    changed = {p.name: p.read_bytes() for p in generator.generate(tmp_path / "out", copy)}
    assert changed["common_pb2.py"] != (GENERATED / "common_pb2.py").read_bytes()


@pytest.mark.integration
def test_buf_lint_passes() -> None:
    result = subprocess.run(
        [str(tools.buf()), "lint"], cwd=ROOT / "protos", capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _buf_breaking(against: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools.buf()), "breaking", "--against", against],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _last_release() -> str | None:
    """The newest release tag (v*) of this checkout, None before the first release."""
    found = subprocess.run(
        ["git", "describe", "--tags", "--abbrev=0", "--match", "v*"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return (found.stdout.strip() or None) if found.returncode == 0 else None


@pytest.mark.integration
def test_the_contract_keeps_what_the_last_release_promised() -> None:
    release = _last_release()
    if release is None:
        pytest.skip("no release tag (v*) yet: the first release sets what must stay compatible")
    result = _buf_breaking(f"../.git#tag={release},subdir=protos", ROOT / "protos")
    assert result.returncode == 0, f"breaks {release}:\n{result.stdout}{result.stderr}"


@pytest.mark.integration
def test_buf_breaking_catches_a_removed_field(tmp_path: Path) -> None:
    """The check above can fail: a field taken out of a copy of the contract is caught."""
    changed = tmp_path / "changed"
    for proto in _generator().proto_files():
        target = changed / "ofa_fleet" / "v1" / proto.name
        target.parent.mkdir(parents=True, exist_ok=True)
        text = proto.read_text()
        if proto.name == "registry.proto":
            text = re.sub(r"\n  string hardware_id = 3[^\n]*;", "", text, count=1)
        target.write_text(text)
    (changed / "buf.yaml").write_text((ROOT / "protos" / "buf.yaml").read_text())
    shutil.copytree(ROOT / "protos" / "third_party", changed / "third_party")
    result = _buf_breaking(str(ROOT / "protos"), changed)
    assert result.returncode != 0
    assert 'field "3" with name "hardware_id" on message "Device" was deleted' in result.stdout


def test_generated_modules_import_under_their_package() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ofa_fleet.v1.registry_pb2_grpc as m; print(m.RegistryServiceStub)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_readme_lists_every_method_of_every_service() -> None:
    """The README's table of the API names each RPC in the row of its service, so a new
    method cannot ship undocumented."""
    from google.longrunning import operations_pb2

    from ofa_fleet.v1 import delivery_pb2, registry_pb2, search_pb2

    text = (ROOT / "README.md").read_text()
    table = text[text.index("## The API at a glance") :]
    table = table[: table.index("\n## ")]
    rows: dict[str, str] = {}
    service = ""
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 4 and cells[1].startswith("`"):
            service = cells[0].strip("`") or service
            rows[service] = rows.get(service, "") + " " + cells[1]
    for module, name in (
        (registry_pb2, "RegistryService"),
        (delivery_pb2, "DeliveryService"),
        (search_pb2, "SearchService"),
        (operations_pb2, "Operations"),
    ):
        full = module.DESCRIPTOR.services_by_name[name].full_name
        listed = set(rows.get(full, rows.get(name, "")).replace("`", " ").split())
        methods = {m.name for m in module.DESCRIPTOR.services_by_name[name].methods}
        assert methods <= listed, f"{name}: {sorted(methods - listed)} missing from the README"
