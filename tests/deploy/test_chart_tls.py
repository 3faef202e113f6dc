"""How devices and operators outside the cluster reach registry and delivery: TLS in the
pod (mutual where asked) beside a plaintext port for the cluster's own callers, an
Ingress, or GRPCRoutes on a Gateway; and plaintext outside only when asked for."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from ofa_fleet.cli.main import build_parser
from tests.deploy.chart import (
    OPERATOR_APIS,
    component_of,
    objects,
    of_kind,
    render,
    values_file,
)
from tests.deploy.paths import CHART

DEFAULT = CHART / "ci" / "default-values.yaml"
ALL_ENABLED = CHART / "ci" / "all-enabled-values.yaml"
GATEWAY = CHART / "ci" / "gateway-values.yaml"
EXPOSED = ("registry", "delivery")


def _merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


def _server(found: list[dict[str, Any]], component: str) -> tuple[dict[str, Any], Any]:
    """The server's container, and its arguments parsed by the real CLI."""
    (deployment,) = [d for d in of_kind(found, "Deployment") if component_of(d) == component]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return container, build_parser().parse_args(container["args"])


def _service_ports(found: list[dict[str, Any]], component: str) -> dict[str, int]:
    (service,) = [s for s in of_kind(found, "Service") if component_of(s) == component]
    return {p["name"]: p["port"] for p in service["spec"]["ports"]}


def _mounted_file(found, component: str, path: Path) -> tuple[str, str]:
    """(Secret, key) behind a file a server's container reads."""
    (deployment,) = [d for d in of_kind(found, "Deployment") if component_of(d) == component]
    spec = deployment["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    for mount in container["volumeMounts"]:
        folder = Path(mount["mountPath"])
        if folder in path.parents and "secret" in volumes[mount["name"]]:
            secret = volumes[mount["name"]]["secret"]
            (item,) = [i for i in secret["items"] if i["path"] == path.name]
            return secret["secretName"], item["key"]
    raise AssertionError(f"{component}: nothing mounts {path}")


def test_tls_in_the_pod_with_a_plaintext_port_for_the_cluster_s_own_callers():
    found = objects(render(values_file(ALL_ENABLED)))
    for component in EXPOSED:
        container, args = _server(found, component)
        assert not any(a.startswith("--allow") for a in container["args"][:2])
        assert _mounted_file(found, component, args.tls_cert) == ("fleet-tls", "tls.crt")
        assert _mounted_file(found, component, args.tls_key) == ("fleet-tls", "tls.key")
        assert _mounted_file(found, component, args.tls_client_ca) == ("fleet-tls", "ca.crt")
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert (ports["grpc"], ports["grpc-internal"]) == (args.port, args.plaintext_port)
        service = _service_ports(found, component)
        assert service["grpc"] == args.port and service["grpc-internal"] == args.plaintext_port
    # The cluster's own callers of the registry use its plaintext port.
    registry = _service_ports(found, "registry")
    for component in ("delivery", "search"):
        _, args = _server(found, component)
        assert args.registry.endswith(f":{registry['grpc-internal']}")


def test_without_tls_the_grpc_port_is_plaintext_and_alone():
    found = objects(render(values_file(DEFAULT)))
    for component in EXPOSED:
        _, args = _server(found, component)
        assert args.tls_cert is None and args.plaintext_port is None and args.allow_plaintext
        assert "grpc-internal" not in _service_ports(found, component)
    _, args = _server(found, "delivery")
    assert args.registry.endswith(f":{_service_ports(found, 'registry')['grpc']}")


def test_the_ingress_speaks_grpc_to_the_pods_and_outlasts_a_watch():
    values = values_file(ALL_ENABLED)
    for tls, protocol in ((True, "GRPCS"), (False, "GRPC")):
        changed = _merged(values, {"tls": {"enabled": tls, "clientCA": {"enabled": tls}}})
        changed["delivery"]["service"]["type"] = "ClusterIP"
        found = objects(render(changed))
        (ingress,) = of_kind(found, "Ingress")
        annotations = ingress["metadata"]["annotations"]
        assert annotations["nginx.ingress.kubernetes.io/backend-protocol"] == protocol
        assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt"
        connections = changed.get("connections", {})
        lasts = connections.get("maxAgeSeconds", 1800) + connections.get("maxAgeGraceSeconds", 60)
        for name in ("proxy-read-timeout", "proxy-send-timeout"):
            assert int(annotations[f"nginx.ingress.kubernetes.io/{name}"]) >= lasts
        (tls_entry,) = ingress["spec"]["tls"]
        hosts = {rule["host"]: rule for rule in ingress["spec"]["rules"]}
        assert (
            set(tls_entry["hosts"])
            == set(hosts)
            == {
                values["ingress"]["registryHost"],
                values["ingress"]["deliveryHost"],
            }
        )
        services = {s["metadata"]["name"]: s for s in of_kind(found, "Service")}
        for rule in hosts.values():
            (path,) = rule["http"]["paths"]
            backend = path["backend"]["service"]
            ports = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
            assert backend["port"]["name"] in ports


def test_grpc_routes_attach_to_the_gateway_and_reach_the_services():
    values = values_file(GATEWAY)
    found = objects(render(values))
    routes = {component_of(r): r for r in of_kind(found, "GRPCRoute")}
    assert set(routes) == set(EXPOSED)
    services = {s["metadata"]["name"]: s for s in of_kind(found, "Service")}
    for component, route in routes.items():
        assert route["spec"]["parentRefs"] == values["gateway"]["parentRefs"]
        assert route["spec"]["hostnames"] == values["gateway"][f"{component}Hostnames"]
        (rule,) = route["spec"]["rules"]
        (backend,) = rule["backendRefs"]
        ports = {p["port"]: p["name"] for p in services[backend["name"]]["spec"]["ports"]}
        assert ports[backend["port"]] == "grpc"
        _, args = _server(found, component)
        assert args.tls_cert is None  # TLS ends on the Gateway's listener


def _refused(values: dict[str, Any], api_versions: list[str] | None = None) -> str:
    with pytest.raises(helm.errors.HelmRenderError) as refused:
        render(values, api_versions)
    return str(refused.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"delivery": {"service": {"type": "LoadBalancer"}}}, "delivery.service.type=LoadBalancer"),
        ({"registry": {"service": {"type": "NodePort"}}}, "registry.service.type=NodePort"),
        (
            {"ingress": {"enabled": True, "registryHost": "registry.example.com"}},
            "ingress.tls.secretName",
        ),
        ({"tls": {"enabled": True}}, "tls.existingSecret"),
        ({"tls": {"clientCA": {"enabled": True}}}, "needs tls.enabled"),
        ({"gateway": {"enabled": True, "registryHostnames": ["r.example.com"]}}, "parentRefs"),
        ({"gateway": {"enabled": True, "parentRefs": [{"name": "gw"}]}}, "Hostnames"),
        (
            {
                "gateway": {
                    "enabled": True,
                    "parentRefs": [{"name": "gw"}],
                    "registryHostnames": ["r.example.com"],
                },
                "tls": {"enabled": True, "existingSecret": "t"},
            },
            "BackendTLSPolicy",
        ),
    ],
    ids=[
        "plaintext load balancer",
        "plaintext node port",
        "ingress without tls",
        "tls without a certificate",
        "mtls without tls",
        "gateway without parents",
        "gateway without hostnames",
        "gateway and pod tls",
    ],
)
def test_plaintext_outside_and_half_configurations_are_refused(override, message):
    assert message in _refused(_merged(values_file(DEFAULT), override))


def test_plaintext_outside_when_asked_for():
    values = _merged(
        values_file(DEFAULT),
        {"delivery": {"service": {"type": "LoadBalancer"}}, "tls": {"allowPlaintextOutside": True}},
    )
    found = objects(render(values))
    (service,) = [s for s in of_kind(found, "Service") if component_of(s) == "delivery"]
    assert service["spec"]["type"] == "LoadBalancer"


def test_routes_need_the_gateway_api():
    apis = [a for a in OPERATOR_APIS if not a.startswith("gateway.networking.k8s.io")]
    assert "GRPCRoute (gateway.networking.k8s.io/v1)" in _refused(values_file(GATEWAY), apis)
