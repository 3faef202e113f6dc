"""Rendering helm/ofa-fleet offline through helm-python-sdk (Helm's Go SDK in a C library
bound with ctypes: no helm binary, no cluster, no network).

`Chart.render` takes no API versions, so `render` calls the library's own render entry
point, which does: the chart creates a ServiceMonitor and PrometheusRule only where the
cluster serves monitoring.coreos.com/v1, as `helm template --api-versions` would say.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native

from tests.deploy.paths import CHART

# The Kubernetes version manifests are rendered for and validated against (kubernetes-validate).
KUBERNETES_VERSION = "1.33.0"
RELEASE = "fleet"
NAMESPACE = "ofa"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
OPERATOR_APIS = [
    "monitoring.coreos.com/v1",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "monitoring.coreos.com/v1/PrometheusRule",
    "ray.io/v1",
    "ray.io/v1/RayCluster",
    "ray.io/v1/RayJob",
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1/GRPCRoute",
]


def values_file(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text()) or {}
    return loaded


def render(values: dict[str, Any], api_versions: list[str] | None = None) -> dict[str, str]:
    """Template path -> rendered text, as `helm template` with these values would write."""
    options = {
        "name": RELEASE,
        "namespace": NAMESPACE,
        "is_install": True,
        "kube_version": f"v{KUBERNETES_VERSION}",
        "api_versions": OPERATOR_APIS if api_versions is None else api_versions,
    }
    with helm.Chart.load(CHART) as chart:
        rendered = _native.call_string(
            "helm_render", chart._raw(), json.dumps(values), json.dumps(options)
        )
    manifests: dict[str, str] = json.loads(rendered)
    return manifests


def objects(rendered: dict[str, str]) -> list[dict[str, Any]]:
    found = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        found.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return found


def of_kind(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in found if obj["kind"] == kind]


def component_of(obj: dict[str, Any]) -> str:
    """The object's app.kubernetes.io/component label: registry, search, delivery, ..."""
    return str(obj["metadata"]["labels"].get("app.kubernetes.io/component", ""))


def kinds(found: list[dict[str, Any]]) -> Counter[str]:
    return Counter(obj["kind"] for obj in found)


def notes(rendered: dict[str, str]) -> str:
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


def pod_specs(found: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(where, pod spec) for every pod the release starts, RayCluster and RayJob pods
    included."""
    specs = []
    for obj in found:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] == "Deployment":
            specs.append((name, obj["spec"]["template"]["spec"]))
        cluster = None
        if obj["kind"] == "RayCluster":
            cluster = obj["spec"]
        elif obj["kind"] == "RayJob":
            cluster = obj["spec"]["rayClusterSpec"]
        if cluster is not None:
            specs.append((f"{name} head", cluster["headGroupSpec"]["template"]["spec"]))
            for group in cluster["workerGroupSpecs"]:
                specs.append((f"{name} {group['groupName']}", group["template"]["spec"]))
        if obj["kind"] == "RayJob":
            specs.append((f"{name} submitter", obj["spec"]["submitterPodTemplate"]["spec"]))
    return specs
