"""`ofa-fleet config` contexts, as kubeconfig users expect: a context names the addresses,
TLS and token files; the environment overrides it and a flag overrides both."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from ofa_fleet.cli.main import main
from tests.registry.conftest import PROFILES
from tests.registry.server_thread import OPERATOR_TOKEN, RegistryServerThread


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    for name in ("OFA_FLEET_REGISTRY", "OFA_FLEET_OPERATOR_TOKEN", "OFA_FLEET_CONTEXT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OFA_FLEET_CONFIG", str(tmp_path / "config.yaml"))

    def run(*args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, json.loads(out) if out.strip().startswith("{") else {}, err

    return run


def test_a_context_connects_and_env_then_flags_override_it(
    cli, registry: RegistryServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    token = tmp_path / "token"
    token.write_text(OPERATOR_TOKEN)
    code, _, err = cli("profiles", "list", "--json")
    assert code == 2 and "no operator token" in err  # no context yet, no environment
    code, made, _ = cli("config", "set-context", "lab", "--registry", registry.address,
                        "--operator-token-file", str(token), "--json")  # fmt: skip
    assert code == 0 and made["registry"] == registry.address
    assert stat.S_IMODE((tmp_path / "config.yaml").stat().st_mode) == 0o600
    cli("config", "set-context", "other", "--registry", "127.0.0.1:1",
        "--operator-token-file", str(token))  # fmt: skip
    assert cli("config", "use-context", "lab", "--json")[0] == 0
    cli("profiles", "create", str(PROFILES / "raspberry-pi-4.yaml"))
    code, listed, err = cli("profiles", "list", "--json")
    assert code == 0, err
    assert [p["name"] for p in listed["profiles"]] == ["raspberry-pi-4"]

    monkeypatch.setenv("OFA_FLEET_CONTEXT", "other")  # this shell only: the other context
    code, _, err = cli("profiles", "list", "--json", "--timeout", "2")
    assert code == 2 and "127.0.0.1:1" in err
    code, listed, _ = cli("profiles", "list", "--json", "--registry", registry.address)
    assert code == 0 and len(listed["profiles"]) == 1  # the flag wins over the context
    monkeypatch.setenv("OFA_FLEET_REGISTRY", registry.address)
    assert cli("profiles", "list", "--json")[0] == 0  # and so does the environment

    monkeypatch.setenv("OFA_FLEET_CONTEXT", "nowhere")
    code, _, err = cli("profiles", "list")
    assert code == 2 and "context 'nowhere' (OFA_FLEET_CONTEXT)" in err and "'lab'" in err
    _, shown, _ = cli("config", "get-contexts", "--json")
    assert shown["current_context"] == "lab" and set(shown["contexts"]) == {"lab", "other"}


def test_a_broken_config_stops_only_the_commands_that_read_it(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "config.yaml").write_text("contexts:\n  lab:\n    colour: red\n")
    code, _, err = cli("profiles", "list")
    assert code == 2 and "unknown fields ['colour']" in err
    with pytest.raises(SystemExit) as ended:  # a command without a connection is unmoved
        main(["--version"])
    assert ended.value.code == 0
    code, _, err = cli("config", "use-context", "nope")
    assert code == 2 and "unknown fields" in err
