"""Who may reach what inside the cluster (NetworkPolicy, evaluated here by Kubernetes'
rules), Ray's token authentication, and the autoscaler's Kubernetes token."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.deploy.chart import objects, of_kind, render, values_file
from tests.deploy.paths import CHART

ALL_ENABLED = CHART / "ci" / "all-enabled-values.yaml"
TRAINING = CHART / "ci" / "training-values.yaml"
NAMESPACE = "ofa"
ELSEWHERE = "monitoring"
NAMESPACE_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Pod:
    """A pod as NetworkPolicy sees it: namespace, labels, named ports. ip_only: traffic
    from outside the cluster (a device through a LoadBalancer), which no peer selects."""

    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    ip_only: bool = False


def _templates(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every pod template the release starts, by a readable name."""
    templates: dict[str, dict[str, Any]] = {}
    for obj in found:
        name = obj["metadata"]["labels"].get("app.kubernetes.io/component", obj["kind"])
        if obj["kind"] in ("Deployment", "Job"):
            templates[name] = obj["spec"]["template"]
        cluster = None
        if obj["kind"] == "RayCluster":
            cluster = obj["spec"]
        elif obj["kind"] == "RayJob":
            cluster = obj["spec"]["rayClusterSpec"]
        if cluster:
            templates[f"{name}-head"] = cluster["headGroupSpec"]["template"]
            for group in cluster["workerGroupSpecs"]:
                templates[f"{name}-worker"] = group["template"]
        if obj["kind"] == "RayJob":
            templates[f"{name}-submitter"] = obj["spec"]["submitterPodTemplate"]
    return templates


def _pods(found: list[dict[str, Any]]) -> dict[str, Pod]:
    pods = {}
    for name, template in _templates(found).items():
        ports = {
            p["name"]: p["containerPort"]
            for c in template["spec"]["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }
        pods[name] = Pod(NAMESPACE, template.get("metadata", {}).get("labels", {}), ports)
    return pods


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, selector  # the chart uses no expressions
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def _peer_admits(peer: dict[str, Any], source: Pod) -> bool:
    if source.ip_only:
        return False  # only ipBlock peers select outside traffic; the chart has none
    if "namespaceSelector" in peer:  # namespaces carry their name as a label
        if not _matches(peer["namespaceSelector"], {NAMESPACE_LABEL: source.namespace}):
            return False
    elif source.namespace != NAMESPACE:
        return False
    return _matches(peer.get("podSelector", {}), source.labels)


def _port_matches(rule_ports: list[dict[str, Any]] | None, target: Pod, port: int) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        wanted = entry["port"]
        if (target.ports.get(wanted) if isinstance(wanted, str) else wanted) == port:
            return True
    return False


def allowed(policies: list[dict[str, Any]], source: Pod, target: Pod, port: int) -> bool:
    """Kubernetes' rule: a pod no policy selects takes everything; else traffic needs one
    ingress rule of a selecting policy whose peers and ports both admit it."""
    selecting = [
        p
        for p in policies
        if target.namespace == NAMESPACE and _matches(p["spec"]["podSelector"], target.labels)
    ]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress", []):
            peers = rule.get("from")
            if (peers is None or any(_peer_admits(p, source) for p in peers)) and _port_matches(
                rule.get("ports"), target, port
            ):
                return True
    return False


DEVICE = Pod("internet", {}, ip_only=True)
PROMETHEUS = Pod(ELSEWHERE, {"app.kubernetes.io/name": "prometheus"})
KUBERAY = Pod("kuberay-system", {"app.kubernetes.io/name": "kuberay-operator"})
INGRESS = Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"})
STRANGER = Pod(NAMESPACE, {"app": "something-else"})


def _render(path, **network: Any) -> tuple[list[dict[str, Any]], dict[str, Pod]]:
    values = copy.deepcopy(values_file(path))
    values.setdefault("networkPolicy", {}).update(network)
    found = objects(render(values))
    return of_kind(found, "NetworkPolicy"), _pods(found)


def test_every_pod_of_the_release_is_under_a_policy():
    policies, pods = _render(ALL_ENABLED)
    for name, pod in pods.items():
        assert any(_matches(p["spec"]["podSelector"], pod.labels) for p in policies), name


def test_each_component_takes_only_what_it_serves_from_whom_it_serves():
    policies, pods = _render(ALL_ENABLED, apiFrom=[])
    registry, delivery, search = pods["registry"], pods["delivery"], pods["search"]
    head, worker = pods["ray-head"], pods["ray-worker"]
    grpc = {name: pod.ports["grpc"] for name, pod in pods.items() if "grpc" in pod.ports}
    cases = [
        # Devices and operators from outside reach registry and delivery, nothing else.
        (DEVICE, registry, grpc["registry"], True),
        (DEVICE, delivery, grpc["delivery"], True),
        (DEVICE, search, grpc["search"], False),
        (DEVICE, head, 10001, False),
        (DEVICE, head, 8265, False),
        (DEVICE, registry, registry.ports["metrics"], False),
        # Search: delivery's reconciler only.
        (delivery, search, grpc["search"], True),
        (registry, search, grpc["search"], False),
        (STRANGER, search, grpc["search"], False),
        # Ray: its nodes among themselves, search on the client port, KubeRay on 8265.
        (search, head, 10001, True),
        (search, head, 8265, False),
        (search, head, 6379, False),
        (worker, head, 6379, True),
        (head, worker, 12345, True),
        (STRANGER, head, 10001, False),
        (KUBERAY, head, 8265, True),
        (KUBERAY, head, 10001, False),
        # Prometheus scrapes every server's metrics port, and only that.
        (PROMETHEUS, search, search.ports["metrics"], True),
        (PROMETHEUS, delivery, delivery.ports["metrics"], True),
        (PROMETHEUS, search, grpc["search"], False),
        # The migrations Job serves nothing.
        (STRANGER, pods["migrations"], 5432, False),
        # Beside TLS, the plaintext port takes the release's own callers, nobody else.
        (delivery, registry, registry.ports["grpc-internal"], True),
        (search, registry, registry.ports["grpc-internal"], True),
        (DEVICE, registry, registry.ports["grpc-internal"], False),
        (STRANGER, registry, registry.ports["grpc-internal"], False),
        (DEVICE, delivery, delivery.ports["grpc-internal"], False),
    ]
    wrong = [
        (s.labels or "outside", t.labels, port, want)
        for s, t, port, want in cases
        if allowed(policies, s, t, port) != want
    ]
    assert not wrong


def test_api_from_narrows_registry_and_delivery_to_the_peers_named():
    # all-enabled's apiFrom: the ingress controller's namespace.
    policies, pods = _render(ALL_ENABLED)
    for name in ("registry", "delivery"):
        port = pods[name].ports["grpc"]
        assert allowed(policies, INGRESS, pods[name], port)
        assert not allowed(policies, DEVICE, pods[name], port)
        assert not allowed(policies, PROMETHEUS, pods[name], port)
    # The release's own callers of the registry, on either port.
    registry = pods["registry"]
    for caller in ("delivery", "search"):
        for port in ("grpc", "grpc-internal"):
            assert allowed(policies, pods[caller], registry, registry.ports[port])


def test_training_cluster_talks_to_itself_and_its_submitter_reaches_the_dashboard():
    policies, pods = _render(TRAINING)
    head, worker = pods["training-head"], pods["training-worker"]
    submitter = pods["training-submitter"]
    assert allowed(policies, submitter, head, 8265)
    assert allowed(policies, worker, head, 6379)
    assert allowed(policies, KUBERAY, head, 8265)
    assert not allowed(policies, pods["search"], head, 8265)


def test_no_policies_when_disabled():
    policies, _ = _render(ALL_ENABLED, enabled=False)
    assert policies == []


# Ray's token authentication.


def _env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def _ray_clients(found: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every container that joins or calls a Ray cluster, and the autoscaler's options."""
    clients = {}
    for name, template in _templates(found).items():
        for container in template["spec"]["containers"]:
            joins = "RAY_ADDRESS" in _env(container)  # search on a RayCluster, not a local Ray
            if name.startswith(("ray-", "training-")) or joins:
                clients[f"{name}/{container['name']}"] = container
    for cluster in of_kind(found, "RayCluster"):
        clients["autoscaler"] = cluster["spec"]["autoscalerOptions"]
    return clients


@pytest.mark.parametrize("path", [ALL_ENABLED, TRAINING], ids=lambda p: p.name)
def test_every_ray_node_and_client_holds_the_same_token(path):
    found = objects(render(values_file(path)))
    clients = _ray_clients(found)
    assert len(clients) >= 3  # a head, a worker group, and the autoscaler or the submitter
    secrets = set()
    for name, container in clients.items():
        env = _env(container)
        assert env.get("RAY_AUTH_MODE") == "token", name
        ref = env["RAY_AUTH_TOKEN"]["secretKeyRef"]
        secrets.add((ref["name"], ref["key"]))
    (secret_name, key), *_ = secrets
    assert len(secrets) == 1
    (secret,) = [s for s in of_kind(found, "Secret") if s["metadata"]["name"] == secret_name]
    assert len(secret["data"][key]) >= 48
    for cluster in of_kind(found, "RayCluster") + [
        j["spec"]["rayClusterSpec"] for j in of_kind(found, "RayJob")
    ]:
        spec = cluster.get("spec", cluster)
        major, minor = (int(x) for x in spec["rayVersion"].split(".")[:2])
        assert (major, minor) >= (2, 52)  # token authentication's first release


def test_ray_authentication_off_leaves_no_token_anywhere():
    values = copy.deepcopy(values_file(ALL_ENABLED))
    values["rayAuth"] = {"enabled": False}
    found = objects(render(values))
    for name, container in _ray_clients(found).items():
        assert "RAY_AUTH_MODE" not in _env(container), name
    assert not [s for s in of_kind(found, "Secret") if s["metadata"]["name"].endswith("ray-auth")]


# The autoscaler's Kubernetes token.


def test_only_the_autoscaler_holds_a_kubernetes_token():
    found = objects(render(values_file(ALL_ENABLED)))
    (cluster,) = of_kind(found, "RayCluster")
    head = cluster["spec"]["headGroupSpec"]["template"]["spec"]
    account = head["serviceAccountName"]
    accounts = {a["metadata"]["name"]: a for a in of_kind(found, "ServiceAccount")}
    assert accounts[account]["automountServiceAccountToken"] is False
    templates = _templates(found)
    # The head's account is its own: KubeRay binds the autoscaler's Role to it.
    users = [n for n, t in templates.items() if t["spec"].get("serviceAccountName") == account]
    assert users == ["ray-head"]
    for name, template in templates.items():
        assert template["spec"]["automountServiceAccountToken"] is False, name
    volumes = {v["name"]: v for v in head["volumes"]}
    (mount,) = cluster["spec"]["autoscalerOptions"]["volumeMounts"]
    assert mount["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"
    assert mount["readOnly"] is True
    sources = volumes[mount["name"]]["projected"]["sources"]
    assert {"token", "ca.crt", "namespace"} == {
        item["path"]
        for source in sources
        for item in (
            [source["serviceAccountToken"]]
            if "serviceAccountToken" in source
            else next(iter(source.values()))["items"]
        )
    }
    for name, template in templates.items():
        for container in template["spec"]["containers"]:
            names = {m["name"] for m in container.get("volumeMounts", [])}
            assert mount["name"] not in names, f"{name}/{container['name']}"
