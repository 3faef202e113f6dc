"""`ofa-fleet profiles|fleets|devices` against a running registry, as an operator types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ofa_fleet.cli.main import main
from ofa_fleet.v1 import registry_pb2 as pb
from ofa_fleet.v1.registry_pb2_grpc import RegistryServiceStub
from tests.registry.conftest import PROFILES
from tests.registry.server_thread import OPERATOR_TOKEN, RegistryServerThread, bearer


@pytest.fixture
def cli(
    registry: RegistryServerThread, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
    monkeypatch.setenv("OFA_FLEET_REGISTRY", registry.address)

    def run(*args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, json.loads(out) if out.strip().startswith("{") else {}, err

    return run


def test_operator_workflow(cli, registry: RegistryServerThread) -> None:  # type: ignore[no-untyped-def]
    files = sorted(str(p) for p in PROFILES.glob("*.yaml"))
    code, created, _ = cli("profiles", "create", *files, "--json")
    assert code == 0
    names = [p["name"] for p in created["profiles"]]
    assert names == ["raspberry-pi-3", "raspberry-pi-4", "x86-gateway"]
    _, listed, _ = cli("profiles", "list", "--json")
    assert [p["name"] for p in listed["profiles"]] == names
    _, shown, _ = cli("profiles", "get", "raspberry-pi-4", "--json")
    assert shown["spec"]["constraints"]["latency_budget"] == "0.004s"  # proto JSON
    code, fleet, _ = cli("fleets", "create", "pis", "--profile", "raspberry-pi-4", "--json")
    assert code == 0 and fleet["enrolment_token"].startswith("ofa_enrol_")
    _, fleets, _ = cli("fleets", "list", "--json")
    assert fleets["fleets"][0]["rollout"] == "auto-latest"
    with registry.channel() as channel:
        device = RegistryServiceStub(channel).RegisterDevice(
            pb.RegisterDeviceRequest(hardware_id="sn-7"),
            metadata=bearer(fleet["enrolment_token"]),
            timeout=10,
        )
    _, devices, _ = cli("devices", "list", "--fleet", "pis", "--json")
    assert [d["name"] for d in devices["devices"]] == [device.device.name]
    assert device.device.name == f"fleets/pis/devices/{device.device.id}"
    _, matching, _ = cli("devices", "list", "--filter", 'hardware_id = "sn-7"', "--json")
    assert [d["name"] for d in matching["devices"]] == [device.device.name]
    _, none, _ = cli("devices", "list", "--filter", 'hardware_id != "sn-7"', "--json")
    assert none["devices"] == []
    code, _, err = cli("devices", "list", "--filter", "serial = 7")
    assert code == 2 and "INVALID_ARGUMENT" in err and "unknown field 'serial'" in err
    code, _, err = cli("profiles", "delete", "raspberry-pi-4")
    assert code == 2 and "used by fleet(s) 'pis'" in err and "FAILED_PRECONDITION" in err
    code, _, err = cli("fleets", "create", "pis", "--profile", "raspberry-pi-4")
    assert code == 2 and "fleet 'pis' already exists" in err
    code, _, _ = cli("profiles", "delete", "x86-gateway", "--json")
    assert code == 0
    _, listed, _ = cli("profiles", "list", "--json")
    assert len(listed["profiles"]) == 2


def test_fleets_update_changes_the_rollout_policy(cli) -> None:  # type: ignore[no-untyped-def]
    cli("profiles", "create", str(PROFILES / "raspberry-pi-4.yaml"), "--json")
    cli("fleets", "create", "pis", "--profile", "raspberry-pi-4", "--json")
    code, updated, _ = cli(
        "fleets", "update", "pis", "--rollout", "staged", "--canary-percent", "25", "--json"
    )
    assert code == 0 and updated["revision"] == 2
    assert updated["rollout"]["staged"]["canary_percent"] == 25
    _, fleets, _ = cli("fleets", "list", "--json")
    assert fleets["fleets"][0]["rollout"] == "staged"
    sha = "ab" * 32
    code, updated, _ = cli("fleets", "update", "pis", "--rollout", "pinned", "--pin", sha, "--json")
    assert code == 0 and updated["rollout"] == {"pinned": {"model_sha256": sha}}
    code, _, err = cli(
        "fleets", "update", "pis", "--rollout", "auto-latest", "--expected-revision", "1"
    )
    assert code == 2 and "ABORTED" in err and "not the expected 1" in err
    # The server's reason and facts, for a script to act on, on the same one line.
    assert "[REVISION_MISMATCH current_revision=3 expected_revision=1]" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = cli("fleets", "update", "pis", "--rollout", "auto-latest", "--pin", sha)
    assert code == 2 and "--pin applies only with --rollout pinned" in err


def test_a_fleet_is_moved_then_decommissioned_device_by_device(cli, registry) -> None:  # type: ignore[no-untyped-def]
    """The lifecycle's way out: move a fleet off a profile, delete its devices, then the
    fleet and the profile, each step named by the error of the step it unblocks."""
    files = [str(PROFILES / f"{name}.yaml") for name in ("raspberry-pi-4", "x86-gateway")]
    cli("profiles", "create", *files, "--json")
    _, fleet, _ = cli("fleets", "create", "pis", "--profile", "raspberry-pi-4", "--json")
    with registry.channel() as channel:
        ids = [
            RegistryServiceStub(channel)
            .RegisterDevice(
                pb.RegisterDeviceRequest(hardware_id=f"sn-{i}"),
                metadata=bearer(fleet["enrolment_token"]),
                timeout=10,
            )
            .device.name
            for i in range(3)
        ]
    code, _, err = cli("profiles", "delete", "raspberry-pi-4")
    assert code == 2 and "ofa-fleet fleets update FLEET --profile OTHER" in err
    code, moved, _ = cli("fleets", "update", "pis", "--profile", "x86-gateway", "--json")
    assert code == 0 and (moved["profile"], moved["revision"]) == ("x86-gateway", 2)
    assert moved["rollout"] == {"auto_latest": {}}  # kept as it was
    assert cli("profiles", "delete", "raspberry-pi-4", "--json")[0] == 0
    code, _, err = cli("fleets", "update", "pis")
    assert code == 2 and "nothing to change" in err

    code, shown, _ = cli("devices", "get", ids[0], "--json")
    assert code == 0 and (shown["name"], shown["hardware_id"]) == (ids[0], "sn-0")
    code, _, err = cli("devices", "get", ids[0].removeprefix("fleets/pis/devices/"))
    assert code == 2 and "INVALID_ARGUMENT" in err and "fleets/FLEET/devices/" in err
    code, _, err = cli("devices", "get", ids[0].replace("fleets/pis/", "fleets/gws/"))
    assert code == 2 and "NOT_FOUND" in err
    code, _, err = cli("devices", "delete", ids[0], "--expected-revision", "7")
    assert code == 2 and "ABORTED" in err
    code, deleted, _ = cli("devices", "delete", ids[0], "--json")
    assert code == 0 and deleted["deleted"] == [ids[0]]
    code, _, err = cli("devices", "get", ids[0])
    assert code == 2 and "NOT_FOUND" in err
    code, _, err = cli("fleets", "delete", "pis")
    assert code == 2 and "ofa-fleet devices delete --fleet NAME --all" in err
    code, _, err = cli("devices", "delete", "--fleet", "pis")
    assert code == 2 and "--fleet NAME --all" in err
    code, deleted, _ = cli("devices", "delete", "--fleet", "pis", "--all", "--json")
    assert code == 0 and sorted(deleted["deleted"]) == sorted(ids[1:])
    assert cli("fleets", "delete", "pis", "--json")[0] == 0
    assert cli("profiles", "delete", "x86-gateway", "--json")[0] == 0


def test_profiles_update_bumps_a_revision_only_for_a_change(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    original = PROFILES / "raspberry-pi-4.yaml"
    cli("profiles", "create", str(original), "--json")
    code, same, _ = cli("profiles", "update", str(original), "--expected-revision", "1", "--json")
    assert code == 0 and same["profiles"][0]["revision"] == 1  # nothing changed
    looser = tmp_path / "raspberry-pi-4.yaml"
    looser.write_text(
        original.read_text().replace("latency_budget_ms: 4.0", "latency_budget_ms: 8")
    )
    code, changed, _ = cli("profiles", "update", str(looser), "--json")
    assert code == 0 and changed["profiles"][0]["revision"] == 2
    code, _, err = cli("profiles", "update", str(original), "--expected-revision", "1")
    assert code == 2 and "[REVISION_MISMATCH current_revision=2 expected_revision=1]" in err
    both = (str(original), str(PROFILES / "x86-gateway.yaml"))
    code, _, err = cli("profiles", "update", *both, "--expected-revision", "2")
    assert code == 2 and "one profile file at a time" in err


def test_bad_files_are_refused_before_any_call(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: broken\ncpu: {architecture: z80, cores: 1, clock_ghz: 1}\n")
    good = PROFILES / "raspberry-pi-4.yaml"
    code, _, err = cli("profiles", "create", str(good), str(bad))
    assert code == 2 and "bad.yaml" in err
    _, listed, _ = cli("profiles", "list", "--json")
    assert listed["profiles"] == []  # the good file was not stored either


def test_missing_token_and_unreachable_registry(cli, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OFA_FLEET_REGISTRY", "127.0.0.1:1")
    code, _, err = cli("profiles", "list", "--timeout", "2")
    assert code == 2 and "cannot reach the registry at 127.0.0.1:1" in err
    monkeypatch.delenv("OFA_FLEET_OPERATOR_TOKEN")
    code, _, err = cli("profiles", "list")
    assert code == 2 and "set OFA_FLEET_OPERATOR_TOKEN or pass --operator-token-file" in err


def test_output_yaml_is_the_json_result_as_a_yaml_document(cli, capsys) -> None:  # type: ignore[no-untyped-def]
    cli("profiles", "create", str(PROFILES / "raspberry-pi-4.yaml"), "--json")
    code, as_json, _ = cli("profiles", "list", "-o", "json")
    assert code == 0 and as_json["profiles"][0]["name"] == "raspberry-pi-4"
    assert main(["profiles", "list", "-o", "yaml"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("---\n") and yaml.safe_load(out) == as_json
    assert main(["fleets", "list", "--output", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == {"fleets": []}
    assert cli("fleets", "list", "--json")[1] == {"fleets": []}  # one run's choice ends with it
