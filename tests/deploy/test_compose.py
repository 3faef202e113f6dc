"""deploy/compose.yaml, checked without a Docker engine: it is valid against the Compose
Specification's JSON schema (as check-jsonschema ships it), every server's command parses
with the real CLI, and services, dependencies, volumes, health checks and the Prometheus
targets agree with each other."""

from __future__ import annotations

import importlib.resources
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from ofa_fleet.cli.main import build_parser
from tests.deploy.paths import DEPLOY, PROMETHEUS

COMPOSE = DEPLOY / "compose.yaml"
SERVERS = {"registry": (50051, 9451), "search": (50052, 9452), "delivery": (50053, 9453)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def _compose_schema_validator() -> jsonschema.protocols.Validator:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def test_valid_against_the_compose_specification(compose):
    errors = [e.message for e in _compose_schema_validator().iter_errors(compose)]
    assert errors == []


def test_the_schema_rejects_a_misspelt_service_key(compose):
    broken = json.loads(json.dumps(compose))
    broken["services"]["registry"]["helthcheck"] = broken["services"]["registry"]["healthcheck"]
    assert list(_compose_schema_validator().iter_errors(broken))


def test_the_stack_has_its_six_services(compose):
    assert set(compose["services"]) == {*SERVERS, "postgres", "prometheus", "grafana"}


def test_every_service_has_an_image_or_a_build_and_a_health_check(compose):
    for name, service in compose["services"].items():
        assert "image" in service or "build" in service, name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    for name in SERVERS:
        build = compose["services"][name]["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).is_file()


def test_registry_and_delivery_run_the_image_without_torch_or_ray(compose):
    targets = {name: compose["services"][name]["build"].get("target") for name in SERVERS}
    assert targets == {"registry": "services", "delivery": "services", "search": None}
    images = {name: compose["services"][name]["image"] for name in SERVERS}
    assert len(set(images.values())) == 2  # one tag per image, never one for both


def test_dependencies_exist_and_wait_only_for_checkable_health(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency]
    order: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"dependency cycle {(*path, name)}"
        for dependency in services[name].get("depends_on", {}):
            visit(dependency, (*path, name))
        if name not in order:
            order.append(name)

    for name in services:
        visit(name, ())
    assert order.index("postgres") < order.index("registry") < order.index("delivery")


def test_volumes_are_declared_and_bind_sources_exist(compose):
    declared = set(compose["volumes"])
    used = set()
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith(("./", "../")):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} is missing"
            elif not source.startswith("${"):
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, f"declared but unused: {declared - used}"


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment with `${VAR:-default}` and `${VAR:?msg}` filled in."""

    def fill(value: str) -> str:
        return re.sub(
            r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}",
            lambda m: m.group(2) if m.group(2) is not None else "x" * 32,
            value,
        )

    return {key: fill(str(value)) for key, value in service.get("environment", {}).items()}


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_server_commands_parse_with_the_real_cli(compose, server, monkeypatch):
    service = compose["services"][server]
    for key, value in _environment(service).items():
        monkeypatch.setenv(key, value)
    args = build_parser().parse_args(service["command"])
    grpc_port, metrics_port = SERVERS[server]
    assert (args.command, args.service) == ("serve", server)
    assert args.host == "0.0.0.0"
    assert args.port == grpc_port
    assert args.metrics_port == metrics_port
    assert args.allow_plaintext
    assert service["environment"]["OFA_FLEET_HEALTH_ADDRESS"] == f"127.0.0.1:{grpc_port}"
    assert "OFA_FLEET_OPERATOR_TOKEN" in service["environment"]
    if server != "search":
        assert args.db.startswith("postgresql://ofa:")
        assert args.db.endswith(f"@postgres:5432/ofa_fleet_{server}")
    if server == "delivery":
        assert (args.registry, args.search) == ("registry:50051", "search:50052")
        mounts = {v.split(":")[1] for v in service["volumes"]}
        assert args.blobs in mounts
        assert str(args.signing_key.parent) in mounts


def test_postgres_creates_the_databases_the_servers_use(compose):
    init = (DEPLOY / "postgres" / "init.sql").read_text()
    for server in ("registry", "delivery"):
        assert f"CREATE DATABASE ofa_fleet_{server} OWNER ofa;" in init


def test_prometheus_scrapes_every_server_s_metrics_port(compose):
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    for server, (_, metrics_port) in SERVERS.items():
        assert targets[f"ofa-fleet-{server}"] == f"{server}:{metrics_port}"
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in mounts


def test_grafana_is_provisioned_with_the_datasource_the_dashboard_uses(compose):
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    dashboard = json.loads((DEPLOY / "grafana" / "dashboard.json").read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert variable["current"]["value"] in {d["uid"] for d in datasources}
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "ofa-fleet.yml").read_text()
    )["providers"][0]
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboard.json:{provider['options']['path']}/ofa-fleet.json:ro" in mounts
