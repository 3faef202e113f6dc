"""The chart's Secrets: where they come from, how pods read them, and when a changed one
rolls the pods that copied it at start (checksums)."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest

from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.errors import InvalidArgumentError
from tests.deploy.chart import (
    CI_VALUES,
    component_of,
    objects,
    of_kind,
    pod_specs,
    render,
    values_file,
)
from tests.deploy.paths import CHART

DEFAULT = CHART / "ci" / "default-values.yaml"
KEYS_DIR = "/var/run/ofa-fleet/keys"


def _delivery_pod(found: list[dict[str, Any]]) -> dict[str, Any]:
    (delivery,) = [d for d in of_kind(found, "Deployment") if component_of(d) == "delivery"]
    pod: dict[str, Any] = delivery["spec"]["template"]
    return pod


def _annotations(found: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Each server Deployment's pod annotations."""
    return {
        component_of(d): d["spec"]["template"]["metadata"].get("annotations", {})
        for d in of_kind(found, "Deployment")
    }


def test_secrets_exist_or_are_named_existing(scenario):
    path, found = scenario
    values = values_file(path)
    created = {s["metadata"]["name"] for s in of_kind(found, "Secret")}
    referenced = set()
    for _, spec in pod_specs(found):
        for container in spec.get("initContainers", []) + spec["containers"]:
            for env in container.get("env", []):
                if "valueFrom" in env:
                    referenced.add(env["valueFrom"]["secretKeyRef"]["name"])
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                referenced.add(volume["secret"]["secretName"])
    existing = {
        values.get(section, {}).get("existingSecret")
        for section in ("operatorToken", "database", "signingKey")
    } - {None, ""}
    existing |= {r["existingSecret"] for r in values.get("signingKey", {}).get("retired", [])}
    tls = values.get("tls", {})
    existing |= {tls.get("existingSecret"), tls.get("clientCA", {}).get("existingSecret")} - {
        None,
        "",
    }
    assert referenced == (created | existing) & referenced
    assert referenced - created == existing


def test_every_signing_key_reaches_delivery_as_an_owner_only_file(scenario):
    path, found = scenario
    retired = values_file(path).get("signingKey", {}).get("retired", [])
    spec = _delivery_pod(found)["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["signing-key"]["emptyDir"]["medium"] == "Memory"
    copies = spec["initContainers"]
    assert len(copies) == 1 + len(retired)
    (server,) = spec["containers"]
    mounts = {m["name"]: m for m in server["volumeMounts"]}
    assert mounts["signing-key"]["readOnly"] is True
    files = []
    for copied in copies:
        assert copied["command"][:3] == ["install", "-m", "0600"]
        source, target = copied["command"][3:]
        secret_volume = next(m for m in copied["volumeMounts"] if m["name"] != "signing-key")
        assert secret_volume["readOnly"] is True
        assert source.startswith(secret_volume["mountPath"] + "/")
        assert volumes[secret_volume["name"]]["secret"]["defaultMode"] == 0o400
        assert secret_volume["name"] not in mounts  # the server sees only the copies
        assert target.startswith(KEYS_DIR + "/")
        files.append(target)
    assert len(set(files)) == len(files)
    assert f"--signing-key={files[0]}" in server["args"]
    assert [a for a in server["args"] if a.startswith("--retired-signing-key=")] == [
        f"--retired-signing-key={f}" for f in files[1:]
    ]
    secrets = [volumes[c["volumeMounts"][0]["name"]]["secret"]["secretName"] for c in copies]
    assert secrets[1:] == [r["existingSecret"] for r in retired]


def test_a_generated_signing_key_is_made_once_at_install_and_kept():
    found = objects(render(values_file(DEFAULT)))
    (secret,) = [
        s for s in of_kind(found, "Secret") if s["metadata"]["name"].endswith("signing-key")
    ]
    annotations = secret["metadata"]["annotations"]
    # pre-install only: `helm upgrade` never renders it again, so it cannot be replaced.
    assert annotations["helm.sh/hook"] == "pre-install"
    assert annotations["helm.sh/resource-policy"] == "keep"
    # Before the migrations Job's hooks, and before the servers that read it.
    weights = [
        int(obj["metadata"]["annotations"]["helm.sh/hook-weight"])
        for obj in found
        if obj is not secret and "helm.sh/hook" in obj["metadata"].get("annotations", {})
    ]
    assert weights and int(annotations["helm.sh/hook-weight"]) < min(weights)


def test_generated_signing_key_is_one_delivery_accepts(tmp_path: Path):
    found = objects(render(values_file(DEFAULT)))
    (secret,) = [
        s for s in of_kind(found, "Secret") if s["metadata"]["name"].endswith("signing-key")
    ]
    pem = base64.b64decode(secret["data"]["signing.key"])
    key = tmp_path / "signing.key"
    key.write_bytes(pem)
    key.chmod(0o600)
    assert len(ModelSigner.load_or_create(key).key_id) == 16
    # What a Secret volume with fsGroup gives a non-root user: the server refuses it.
    key.chmod(0o440)
    with pytest.raises(InvalidArgumentError):
        ModelSigner.load_or_create(key)


@pytest.mark.parametrize("path", CI_VALUES, ids=[p.name for p in CI_VALUES])
def test_checksums_do_not_change_between_renders_of_the_same_values(path: Path):
    """A generated token or key is random per render: checksummed, it would roll every pod
    at every upgrade."""
    values = values_file(path)
    assert _annotations(objects(render(values))) == _annotations(objects(render(values)))


def _with(values: dict[str, Any], section: str, **changes: Any) -> dict[str, Any]:
    changed = copy.deepcopy(values)
    changed.setdefault(section, {}).update(changes)
    return changed


ROLLS = [
    # (what changes, the pods that must roll)
    (
        "operatorToken",
        {"value": "a-new-operator-token-of-enough-length"},
        {"registry", "search", "delivery"},
    ),
    ("operatorToken", {"existingSecret": "other-token"}, {"registry", "search", "delivery"}),
    ("signingKey", {"existingSecret": "signing-key-2027"}, {"delivery"}),
    ("signingKey", {"retired": [{"existingSecret": "signing-key-2025"}]}, {"delivery"}),
    ("database", {"registryUrl": "postgresql://u:p@db:5432/r2"}, {"registry", "delivery"}),
]
ROLLS_ON_RAY = [("rayAuth", {"existingSecret": "ray-token-2027"}, {"search"})]


@pytest.mark.parametrize(("section", "changes", "rolled"), ROLLS + ROLLS_ON_RAY)
def test_a_changed_secret_rolls_exactly_the_pods_that_read_it(
    section: str, changes: dict[str, Any], rolled: set[str]
):
    values = values_file(DEFAULT)
    if section == "rayAuth":  # search on a RayCluster, which it joins with the token
        values = {**values, "search": {**values["search"], "ray": {"enabled": True}}}
    before = _annotations(objects(render(values)))
    after = _annotations(objects(render(_with(values, section, **changes))))
    changed = {name for name in before if before[name] != after[name]}
    assert changed == rolled
