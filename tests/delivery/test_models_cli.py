"""`ofa-fleet models ...` as an operator runs it: a real process against real servers."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ofa_fleet.delivery.store.model_store import ModelStore
from ofa_fleet.hardware.profile_proto import profile_to_proto
from ofa_fleet.v1 import registry_pb2, registry_pb2_grpc
from tests.cli_runner import ofa_fleet
from tests.delivery.conftest import blob_store, manifest_for, model_bytes, open_database
from tests.delivery.server_thread import DeliveryServerThread
from tests.delivery.world import OPERATOR, PROFILE
from tests.registry.conftest import example_profile
from tests.registry.server_thread import RegistryServerThread
from tests.server_process import OPERATOR_TOKEN

pytestmark = pytest.mark.integration


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple]:
    database = open_database(f"sqlite:///{tmp_path / 'delivery.db'}")
    store = ModelStore(database, blob_store("files", database, tmp_path / "blobs"))
    with (
        RegistryServerThread(f"sqlite:///{tmp_path / 'registry.db'}") as registry,
        registry.channel() as channel,
    ):
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        stub.CreateProfile(
            registry_pb2.CreateProfileRequest(profile=profile_to_proto(example_profile())),
            metadata=OPERATOR,
            timeout=10,
        )
        stub.CreateFleet(
            registry_pb2.CreateFleetRequest(
                fleet_id="pis", fleet=registry_pb2.Fleet(profile=f"profiles/{PROFILE}")
            ),
            metadata=OPERATOR,
            timeout=10,
        )
        with DeliveryServerThread(store, tmp_path / "key", registry.address, 16 * 1024) as d:
            monkeypatch.setenv("OFA_FLEET_DELIVERY", d.address)
            monkeypatch.setenv("OFA_FLEET_OPERATOR_TOKEN", OPERATOR_TOKEN)
            shas = []
            for seed in (1, 2):
                data = model_bytes(seed, 50_000)
                manifest = manifest_for(data, PROFILE)
                store.add(manifest, d.signer.sign(manifest), data)
                store.set_current(PROFILE, manifest.sha256, "missing")
                shas.append(hashlib.sha256(data).hexdigest())
            yield stub, shas
    database.close()


def run_json(*args: str) -> dict:
    return json.loads(ofa_fleet("models", *args, "--json").stdout)


def test_list_show_pin_rollback_unpin(servers):
    registry, (older, newer) = servers
    listed = run_json("list")["models"]
    assert {m["sha256"] for m in listed} == {older, newer}
    assert next(m for m in listed if m["sha256"] == newer)["fleets"] == ["pis"]
    shown = run_json("show", PROFILE)
    assert shown["current"]["sha256"] == newer
    assert [h["sha256"] for h in shown["history"]] == [newer, older]

    assert run_json("pin", "pis", "--sha256", older)["sha256"] == older
    fleet = registry.GetFleet(
        registry_pb2.GetFleetRequest(name="fleets/pis"), metadata=OPERATOR
    ).fleet
    assert fleet.rollout.HasField("pinned")
    assert run_json("pin", "pis", "--unpin")["sha256"] == ""
    assert run_json("pin", "pis", "--rollback")["sha256"] == older
    text = ofa_fleet("models", "show", PROFILE).stdout
    assert PROFILE in text and older[:16] in text


def test_mistakes_are_one_line_errors(servers):
    unknown = ofa_fleet("models", "pin", "pis", "--sha256", "ab" * 32, check=False)
    assert unknown.returncode == 2 and unknown.stderr.count("\n") == 1
    assert "ab" * 32 in unknown.stderr
    both = ofa_fleet("models", "pin", "pis", "--unpin", "--rollback", check=False)
    assert both.returncode == 2 and "not allowed with" in both.stderr
    missing = ofa_fleet("models", "show", "no-such-profile", check=False)
    assert missing.returncode == 2 and "no-such-profile" in missing.stderr
