"""Checks for the custom resources kubernetes-validate has no schema for.

RayCluster (ray.io/v1): its pod templates are validated as core PodTemplates against the
same Kubernetes schemas; the rest against KubeRay's field names and invariants.
ServiceMonitor (monitoring.coreos.com/v1): its selector and port must find the release's
metrics Services. PrometheusRule: its spec must be the rules file promtool accepts (the
test runs promtool on it).
"""

from __future__ import annotations

from typing import Any

import kubernetes_validate

RAYCLUSTER_FIELDS = {
    "rayVersion", "enableInTreeAutoscaling", "autoscalerOptions", "headGroupSpec",
    "workerGroupSpecs", "headServiceAnnotations", "suspend", "managedBy",
    "gcsFaultToleranceOptions",
}  # fmt: skip
AUTOSCALER_FIELDS = {
    "resources", "image", "imagePullPolicy", "securityContext", "idleTimeoutSeconds",
    "upscalingMode", "env", "envFrom", "volumeMounts", "version",
}  # fmt: skip
HEAD_FIELDS = {"serviceType", "headService", "enableIngress", "rayStartParams", "template"}
WORKER_FIELDS = {
    "groupName", "replicas", "minReplicas", "maxReplicas", "idleTimeoutSeconds",
    "rayStartParams", "template", "scaleStrategy", "numOfHosts", "suspend",
}  # fmt: skip


RAYJOB_FIELDS = {
    "entrypoint", "runtimeEnvYAML", "jobId", "shutdownAfterJobFinishes",
    "ttlSecondsAfterFinished", "activeDeadlineSeconds", "backoffLimit", "rayClusterSpec",
    "clusterSelector", "submissionMode", "submitterPodTemplate", "submitterConfig",
    "entrypointNumCpus", "entrypointNumGpus", "entrypointResources", "suspend",
    "managedBy", "deletionStrategy",
}  # fmt: skip
SUBMISSION_MODES = {"K8sJobMode", "HTTPMode", "InteractiveMode", "SidecarMode"}


def validate_pod_template(template: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(
        {
            "apiVersion": "v1",
            "kind": "PodTemplate",
            "metadata": {"name": "check"},
            "template": template,
        },
        version,
        strict=True,
    )


def check_raycluster(obj: dict[str, Any], version: str) -> None:
    spec = obj["spec"]
    assert set(spec) <= RAYCLUSTER_FIELDS, set(spec) - RAYCLUSTER_FIELDS
    autoscaler = spec.get("autoscalerOptions", {})
    assert set(autoscaler) <= AUTOSCALER_FIELDS, set(autoscaler) - AUTOSCALER_FIELDS
    assert autoscaler.get("upscalingMode", "Default") in {"Default", "Aggressive", "Conservative"}
    # The autoscaler sidecar's resources and security context, as a container would carry them.
    validate_pod_template(
        {
            "spec": {
                "containers": [
                    {
                        "name": "autoscaler",
                        "image": "check",
                        "resources": autoscaler.get("resources", {}),
                        "securityContext": autoscaler.get("securityContext", {}),
                    }
                ]
            }
        },
        version,
    )
    head = spec["headGroupSpec"]
    assert set(head) <= HEAD_FIELDS, set(head) - HEAD_FIELDS
    groups = [head, *spec["workerGroupSpecs"]]
    for group in groups:
        params = group["rayStartParams"]
        assert all(isinstance(v, str) for v in params.values()), f"non-string in {params}"
        validate_pod_template(group["template"], version)
    names = [group["groupName"] for group in spec["workerGroupSpecs"]]
    assert len(names) == len(set(names))
    for group in spec["workerGroupSpecs"]:
        assert set(group) <= WORKER_FIELDS, set(group) - WORKER_FIELDS
        assert 0 <= group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def check_servicemonitor(obj: dict[str, Any], found: list[dict[str, Any]]) -> None:
    spec = obj["spec"]
    selector = spec["selector"]
    services = [
        service
        for service in found
        if service["kind"] == "Service" and _selects(selector, service["metadata"]["labels"])
    ]
    assert services, "the ServiceMonitor selects no Service"
    ports = {endpoint["port"] for endpoint in spec["endpoints"]}
    for service in services:
        assert spec["jobLabel"] in service["metadata"]["labels"]
        assert ports <= {port["name"] for port in service["spec"]["ports"]}
    for endpoint in spec["endpoints"]:
        assert endpoint["path"].startswith("/")


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        present = labels.get(expression["key"])
        if expression["operator"] == "In" and present not in expression["values"]:
            return False
        if expression["operator"] == "NotIn" and present in expression["values"]:
            return False
        if expression["operator"] == "Exists" and present is None:
            return False
    return True


def check_rayjob(obj: dict[str, Any], version: str) -> None:
    """KubeRay's RayJob: its fields, its submitter pod, and its cluster as a RayCluster."""
    spec = obj["spec"]
    assert set(spec) <= RAYJOB_FIELDS, set(spec) - RAYJOB_FIELDS
    assert isinstance(spec["entrypoint"], str) and spec["entrypoint"]
    assert spec.get("submissionMode", "K8sJobMode") in SUBMISSION_MODES
    for field in ("ttlSecondsAfterFinished", "backoffLimit", "activeDeadlineSeconds"):
        assert isinstance(spec.get(field, 0), int) and spec.get(field, 0) >= 0, field
    if "submitterPodTemplate" in spec:
        validate_pod_template(spec["submitterPodTemplate"], version)
    check_raycluster({"spec": spec["rayClusterSpec"]}, version)
