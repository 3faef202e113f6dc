"""helm/ofa-fleet: linted and rendered with every ci/ values file through helm-python-sdk,
every manifest validated against Kubernetes' schemas (kubernetes-validate) or, for the
custom resources, by crd_checks; bad values are refused; and the rendered objects wire up:
probes, selectors, secrets, security contexts, the real CLI's flags."""

from __future__ import annotations

import base64
import json
import math
import shlex
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import ray
import yaml

from ofa_fleet.cli.main import build_parser
from ofa_fleet.serving.server import LIVENESS_SERVICE
from tests.deploy import crd_checks
from tests.deploy.chart import (
    CI_VALUES,
    KUBERNETES_VERSION,
    NAMESPACE,
    component_of,
    kinds,
    notes,
    objects,
    of_kind,
    pod_specs,
    render,
    values_file,
)
from tests.deploy.paths import CHART, CHART_RULES, DEPLOY, ROOT, RULES

CUSTOM_KINDS = {"RayCluster", "RayJob", "ServiceMonitor", "PrometheusRule", "GRPCRoute"}
SERVERS = {
    "registry": ("ofa_fleet.v1.RegistryService", 50051, 9451),
    "search": ("ofa_fleet.v1.SearchService", 50052, 9452),
    "delivery": ("ofa_fleet.v1.DeliveryService", 50053, 9453),
}
DEFAULT = CHART / "ci" / "default-values.yaml"
ALL_ENABLED = CHART / "ci" / "all-enabled-values.yaml"
TRAINING = CHART / "ci" / "training-values.yaml"
SCENARIO_IDS = [path.name for path in CI_VALUES]


def test_ci_has_the_scenarios_the_issue_asks_for():
    names = {path.name for path in CI_VALUES}
    assert {
        "default-values.yaml",
        "all-enabled-values.yaml",
        "existing-secret-values.yaml",
    } <= names


@pytest.mark.parametrize("values", CI_VALUES, ids=SCENARIO_IDS)
def test_lint_is_clean(values):
    report = helm.lint(
        CHART, values_file(values), strict=True, kube_version=f"v{KUBERNETES_VERSION}"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == [] and report["errors"] == [], report


def test_every_manifest_validates(scenario, capsys):
    """kubernetes-validate (strict: unknown fields are errors) for built-in kinds."""
    path, found = scenario
    for obj in found:
        where = f"{path.name}: {obj['kind']}/{obj['metadata']['name']}"
        if obj["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}: {error.message} at {list(error.path)}")
    counted = kinds(found)
    with capsys.disabled():
        summary = ", ".join(f"{kind} {n}" for kind, n in sorted(counted.items()))
        print(
            f"\n{path.name}: {len(found)} objects ({summary}); all valid for {KUBERNETES_VERSION}"
        )


def test_custom_resources_check_out(scenario):
    _, found = scenario
    for obj in of_kind(found, "RayCluster"):
        crd_checks.check_raycluster(obj, KUBERNETES_VERSION)
    for obj in of_kind(found, "RayJob"):
        crd_checks.check_rayjob(obj, KUBERNETES_VERSION)
    for obj in of_kind(found, "ServiceMonitor"):
        crd_checks.check_servicemonitor(obj, found)
    for obj in of_kind(found, "PrometheusRule"):
        assert obj["spec"] == yaml.safe_load(RULES.read_text())


def test_all_enabled_renders_every_kind():
    found = objects(render(values_file(ALL_ENABLED)))
    assert set(kinds(found)) == {
        "ServiceAccount", "Secret", "ConfigMap", "Deployment", "Service",
        "HorizontalPodAutoscaler", "PodDisruptionBudget", "PersistentVolumeClaim",
        "NetworkPolicy", "Ingress", "RayCluster", "RayJob", "ServiceMonitor",
        "PrometheusRule", "Job",
    }  # fmt: skip


DIGEST = "sha256:" + "0123456789abcdef" * 4
SERVICES_DIGEST = "sha256:" + "fedcba9876543210" * 4


def test_every_pod_runs_the_image_by_digest_when_one_is_given():
    values = values_file(ALL_ENABLED)
    values["image"] = {
        **values.get("image", {}),
        "repository": "registry.example/ofa-fleet",
        "services": {"repository": "registry.example/ofa-fleet-services"},
    }
    by_tag = _images(objects(render(values)))
    values["image"]["digest"] = DIGEST
    values["image"]["services"]["digest"] = SERVICES_DIGEST
    by_digest = _images(objects(render(values)))
    assert len(by_digest) == len(by_tag) >= 8  # every server, Ray pod and job container
    assert set(by_digest) == {
        f"registry.example/ofa-fleet@{DIGEST}",
        f"registry.example/ofa-fleet-services@{SERVICES_DIGEST}",
    }
    assert all(image.startswith("registry.example/ofa-fleet") for image in by_tag)
    assert all(":" in image.removeprefix("registry.example") for image in by_tag)


def test_registry_delivery_and_migrations_run_the_image_without_torch_or_ray():
    found = objects(render(values_file(ALL_ENABLED)))
    slim = {"registry", "delivery", "migrations"}
    seen = set()
    for obj in found:
        for image in _images([obj]):
            component = component_of(obj)
            seen.add(component)
            assert image.startswith("ofa-fleet-services:") == (component in slim), (obj, image)
    assert slim < seen and {"search", "ray", "training"} < seen


def _images(found: list[dict[str, Any]]) -> list[str]:
    """Every container image the objects name, wherever in them it is."""
    images: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "image" and isinstance(value, str):
                    images.append(value)
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(found)
    return images


def test_a_default_install_asks_for_no_volume_it_may_not_get():
    """Common default storage classes offer ReadWriteOnce only: a default install keeps
    models in PostgreSQL and claims no volume, so nothing waits Pending."""
    found = objects(render(values_file(DEFAULT)))
    assert not of_kind(found, "PersistentVolumeClaim")
    (delivery,) = [d for d in of_kind(found, "Deployment") if component_of(d) == "delivery"]
    (container,) = delivery["spec"]["template"]["spec"]["containers"]
    assert "--blobs=database" in container["args"]
    assert not [
        v for v in delivery["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v
    ]


def test_prometheus_operator_objects_need_its_api():
    rendered = render(values_file(DEFAULT), api_versions=[])
    assert not CUSTOM_KINDS & set(kinds(objects(rendered)))
    assert "monitoring.coreos.com/v1) is not installed" in notes(rendered)
    with_operator = render(values_file(DEFAULT))
    assert {"ServiceMonitor", "PrometheusRule"} <= set(kinds(objects(with_operator)))
    assert "is not installed" not in notes(with_operator)


def test_chart_copies_equal_deploy_s_files():
    assert CHART_RULES.read_bytes() == RULES.read_bytes()
    dashboard = CHART / "files" / "dashboard.json"
    assert dashboard.read_bytes() == (DEPLOY / "grafana" / "dashboard.json").read_bytes()


def test_rules_configmap_and_dashboard_carry_the_files():
    found = objects(render(values_file(ALL_ENABLED)))
    data = {k: v for cm in of_kind(found, "ConfigMap") for k, v in cm["data"].items()}
    assert yaml.safe_load(data["ofa-fleet-rules.yml"]) == yaml.safe_load(RULES.read_text())
    assert json.loads(data["ofa-fleet.json"])["uid"] == "ofa-fleet"


def test_runbook_links_point_at_the_runbook_base_url_given():
    def annotations(values: dict) -> list[dict]:
        (rule,) = of_kind(objects(render(values)), "PrometheusRule")
        return [
            r["annotations"]
            for group in rule["spec"]["groups"]
            for r in group["rules"]
            if "alert" in r
        ]

    plain = annotations(values_file(DEFAULT))
    assert plain and all(a["runbook_url"].startswith("deploy/RUNBOOKS.md#") for a in plain)
    base = "https://git.example.com/ops/ofa-fleet/blob/main/deploy/RUNBOOKS.md"
    values = values_file(DEFAULT)
    values.setdefault("metrics", {})["runbookBaseUrl"] = base
    pointed = annotations(values)
    assert [a["runbook_url"] for a in pointed] == [
        a["runbook_url"].replace("deploy/RUNBOOKS.md", base) for a in plain
    ]
    # Only the links change: every other annotation is the file's.
    assert [{k: v for k, v in a.items() if k != "runbook_url"} for a in pointed] == [
        {k: v for k, v in a.items() if k != "runbook_url"} for a in plain
    ]


def test_prometheus_rule_passes_promtool(tmp_path):
    from tests.deploy.test_prometheus import _promtool

    found = objects(render(values_file(ALL_ENABLED)))
    (rule,) = of_kind(found, "PrometheusRule")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rule["spec"]))
    result = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_servers_probe_grpc_health(scenario):
    _, found = scenario
    deployments = of_kind(found, "Deployment")
    assert deployments
    for deployment in deployments:
        service, port, _ = SERVERS[component_of(deployment)]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports["grpc"] == port
        # Kubernetes' gRPC probes speak no TLS: beside a TLS port they use the plaintext one.
        if any(arg.startswith("--tls-cert=") for arg in container["args"]):
            port = ports["grpc-internal"]
            assert f"--plaintext-port={port}" in container["args"]
        assert container["readinessProbe"]["grpc"] == {"port": port, "service": service}
        # Liveness asks for the name that stays SERVING through a database outage.
        assert container["livenessProbe"]["grpc"] == {"port": port, "service": LIVENESS_SERVICE}
        assert container["startupProbe"]["grpc"] == {"port": port}


def test_services_and_budgets_select_their_pods(scenario):
    _, found = scenario
    pods = {
        component_of(d): d["spec"]["template"]["metadata"]["labels"]
        for d in of_kind(found, "Deployment")
    }
    containers = {
        component_of(d): d["spec"]["template"]["spec"]["containers"][0]
        for d in of_kind(found, "Deployment")
    }
    for obj in of_kind(found, "Service"):
        component = component_of(obj)
        labels = pods[component]
        assert all(labels.get(k) == v for k, v in obj["spec"]["selector"].items())
        names = {port["name"] for port in containers[component]["ports"]}
        assert {port["targetPort"] for port in obj["spec"]["ports"]} <= names
    for obj in of_kind(found, "PodDisruptionBudget"):
        labels = pods[component_of(obj)]
        assert crd_checks._selects(obj["spec"]["selector"], labels)
    for hpa in of_kind(found, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        (delivery,) = [d for d in of_kind(found, "Deployment") if component_of(d) == "delivery"]
        assert (target["kind"], target["name"]) == ("Deployment", delivery["metadata"]["name"])
        assert "replicas" not in delivery["spec"], "the HPA owns delivery's replica count"


def test_pods_run_non_root_read_only_without_capabilities(scenario):
    _, found = scenario
    for where, spec in pod_specs(found):
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        tmp = next(v for v in spec["volumes"] if v["name"] == "tmp")
        assert "emptyDir" in tmp, where
        for container in spec.get("initContainers", []) + spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"]["drop"] == ["ALL"], where
            assert container["resources"]["requests"] and container["resources"]["limits"]
        for container in spec["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert mounts["/tmp"] == "tmp", where


def _literal_env(container: dict[str, Any]) -> dict[str, str]:
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    env.setdefault("OFA_FLEET_OPERATOR_TOKEN", "x" * 32)
    return env


def test_server_args_parse_with_the_real_cli(scenario, monkeypatch):
    _, found = scenario
    services = {component_of(s): s for s in of_kind(found, "Service")}
    for deployment in of_kind(found, "Deployment"):
        component = component_of(deployment)
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for name in ("OFA_FLEET_REGISTRY_DB", "OFA_FLEET_DELIVERY_DB", "RAY_ADDRESS"):
            monkeypatch.delenv(name, raising=False)
        for name, value in _literal_env(container).items():
            monkeypatch.setenv(name, value)
        args = build_parser().parse_args(container["args"])
        assert (args.command, args.service) == ("serve", component)
        _, port, _ = SERVERS[component]
        assert args.port == port
        ports = {p["name"]: p["port"] for p in services[component]["spec"]["ports"]}
        assert ports["grpc"] == port
        assert args.metrics_port == ports.get("metrics"), "metrics flag and Service agree"
        if component == "delivery" and args.search is not None:
            host, _, search_port = args.search.rpartition(":")
            assert host == services["search"]["metadata"]["name"]
            assert int(search_port) == 50052


def _hook(obj: dict[str, Any]) -> tuple[str, int]:
    annotations = obj["metadata"].get("annotations", {})
    return annotations.get("helm.sh/hook", ""), int(annotations.get("helm.sh/hook-weight", 0))


def test_migrations_run_in_a_hook_job_before_servers_that_only_check(scenario, monkeypatch):
    """Before every install and upgrade a Job migrates both schemas with the migration
    credentials (its Secret made first when the chart makes one); the servers run
    --migrations=check, so their database user needs no DDL rights."""
    _, found = scenario
    (job,) = of_kind(found, "Job")
    hook, weight = _hook(job)
    assert hook == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    assert "serviceAccountName" not in pod and pod["automountServiceAccountToken"] is False
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    containers = {c["name"]: c for c in pod["containers"]}
    assert set(containers) == {"registry", "delivery"}
    secrets = {s["metadata"]["name"]: s for s in of_kind(found, "Secret")}
    for service, container in containers.items():
        args = build_parser().parse_args(container["args"])
        assert (args.command, args.service) == ("migrate", service)
        (env,) = container["env"]
        assert env["name"] == f"OFA_FLEET_{service.upper()}_DB"
        used = env["valueFrom"]["secretKeyRef"]["name"]
        if used in secrets and used.endswith("-migrations"):
            assert _hook(secrets[used]) == (hook, weight - 10)  # made before the Job
    for deployment in of_kind(found, "Deployment"):
        component = component_of(deployment)
        if component not in ("registry", "delivery"):
            continue
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for name, value in _literal_env(container).items():
            monkeypatch.setenv(name, value)
        assert build_parser().parse_args(container["args"]).migrations == "check"


def test_migration_credentials_are_the_migration_user_s_or_the_servers():
    def job_secret(values: dict) -> tuple[str, dict]:
        found = objects(render(values))
        (job,) = of_kind(found, "Job")
        env = job["spec"]["template"]["spec"]["containers"][0]["env"][0]
        name = env["valueFrom"]["secretKeyRef"]["name"]
        secrets = {s["metadata"]["name"]: s for s in of_kind(found, "Secret")}
        data = secrets[name]["data"] if name in secrets else {}
        return name, {k: base64.b64decode(v).decode() for k, v in data.items()}

    name, data = job_secret(values_file(DEFAULT))  # the servers' URLs, in a hook Secret
    assert name.endswith("-migrations")
    assert data["registry-url"] == values_file(DEFAULT)["database"]["registryUrl"]
    own = values_file(DEFAULT)
    own["migrations"] = {
        "job": {
            "enabled": True,
            "registryUrl": "postgresql://owner:pw@db:5432/ofa_fleet_registry",
            "deliveryUrl": "postgresql://owner:pw@db:5432/ofa_fleet_delivery",
        }
    }
    name, data = job_secret(own)
    assert data["registry-url"].startswith("postgresql://owner:")
    assert data["delivery-url"].startswith("postgresql://owner:")
    existing = values_file(CHART / "ci" / "existing-secret-values.yaml")
    assert job_secret(existing)[0] == "fleet-databases"  # exists before the install
    off = values_file(DEFAULT)
    off["migrations"] = {"job": {"enabled": False}}
    found = objects(render(off))
    assert not of_kind(found, "Job")
    for deployment in of_kind(found, "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "--migrations=check" not in container["args"]


def test_connections_age_and_delivery_drains_before_it_stops(scenario, monkeypatch):
    """Every server closes its connections after 30 minutes (search's streams keep their
    longer grace); delivery waits out its preStop, then its grace, inside the pod's
    termination period, and a rolling update never takes a replica away first."""
    path, found = scenario
    values = yaml.safe_load(path.read_text()) or {}
    deployments = {component_of(d): d for d in of_kind(found, "Deployment")}
    for component, deployment in deployments.items():
        if component not in SERVERS:
            continue
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        for name, value in _literal_env(container).items():
            monkeypatch.setenv(name, value)
        args = build_parser().parse_args(container["args"])
        assert args.max_connection_age_seconds == 1800
        assert args.max_connection_age_grace_seconds == (660 if component == "search" else 60)
    delivery = deployments["delivery"]
    pod = delivery["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    args = build_parser().parse_args(container["args"])
    shutdown = {"preStopSeconds": 5, "graceSeconds": 10}
    shutdown.update(values.get("delivery", {}).get("shutdown", {}))
    assert args.grace_seconds == shutdown["graceSeconds"]
    assert pod["terminationGracePeriodSeconds"] == (
        shutdown["preStopSeconds"] + shutdown["graceSeconds"] + 5
    )
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == ["sleep", str(shutdown["preStopSeconds"])]
    assert delivery["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_search_joins_the_raycluster_through_its_head_service():
    found = objects(render(values_file(ALL_ENABLED)))
    (cluster,) = of_kind(found, "RayCluster")
    (search,) = [d for d in of_kind(found, "Deployment") if component_of(d) == "search"]
    env = _literal_env(search["spec"]["template"]["spec"]["containers"][0])
    client_port = next(
        p["containerPort"]
        for p in cluster["spec"]["headGroupSpec"]["template"]["spec"]["containers"][0]["ports"]
        if p["name"] == "client"
    )
    assert env["RAY_ADDRESS"] == f"ray://{cluster['metadata']['name']}-head-svc:{client_port}"
    major_minor = ".".join(ray.__version__.split(".")[:2])
    assert cluster["spec"]["rayVersion"].startswith(major_minor + "."), (
        "the RayCluster runs the Ray version the search image installs"
    )
    images = {c["image"] for _, spec in pod_specs([cluster, search]) for c in spec["containers"]}
    assert len(images) == 1, "driver and Ray nodes run one image"


BAD_VALUES = {
    "negative replicas": {"registry": {"replicas": -1}},
    "unknown key": {"delivery": {"rollout": {"maxSurge": 1}}},
    "port as a string": {"registry": {"port": "50051"}},
    "port out of range": {"delivery": {"metricsPort": 70000}},
    "unknown blob store": {"delivery": {"blobs": "s3"}},
    "short operator token": {"operatorToken": {"value": "too-short"}},
    "root allowed": {"podSecurityContext": {"runAsNonRoot": False}},
    "privilege escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "not a database url": {"database": {"registryUrl": "mysql://db/registry"}},
    "chunk too large": {"delivery": {"chunkBytes": 8 * 1024 * 1024}},
    "extra arg without dashes": {"search": {"extraArgs": ["workers=2"]}},
    "no training workers": {"training": {"workers": 0}},
    "negative connection age": {"connections": {"maxAgeSeconds": -1, "maxAgeGraceSeconds": 60}},
    "no grace on shutdown": {"delivery": {"shutdown": {"preStopSeconds": 5, "graceSeconds": 0}}},
    "unknown training key": {"training": {"gpuType": "h100"}},
    "digest not sha256": {"image": {"digest": "latest"}},
    "training data claim not a name": {
        "training": {"data": {"existingClaim": "Data_Set", "mountPath": "/d", "path": "/d/x"}}
    },
}


@pytest.mark.parametrize("bad", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_schema_refuses_bad_values(bad):
    values = helm.Chart.load(CHART).merge_values(values_file(DEFAULT))
    merged = json.loads(json.dumps(values))
    for section, override in bad.items():
        merged[section] = {**merged[section], **override}
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(merged)
    with pytest.raises(helm.HelmValuesError):
        render(merged)


def test_a_bad_values_file_is_refused_by_lint_and_render():
    bad = values_file(ROOT / "tests" / "deploy" / "bad-values.yaml")
    report = helm.lint(CHART, bad)
    assert report["errors"], report
    with pytest.raises(helm.HelmValuesError) as refused:
        render(bad)
    message = str(refused.value)
    assert "/registry/replicas" in message and "/delivery/blobs" in message


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"delivery": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}}, "minReplicas"),
        (
            {"delivery": {"blobs": "volume", "persistence": {"accessModes": ["ReadWriteOnce"]}}},
            "ReadWriteMany",
        ),
        ({"search": {"checkpoint": {"existingClaim": ""}}}, "search needs its supernet checkpoint"),
        ({"search": {"enabled": False}}, "needs search.enabled"),
        ({"database": {"registryUrl": ""}}, "database.registryUrl"),
        ({"training": {"enabled": True}}, "training.data.existingClaim"),
    ],
    ids=[
        "autoscaler bounds",
        "shared volume",
        "search without a checkpoint",
        "reconciler without search",
        "no database",
        "training without data",
    ],
)
def test_templates_refuse_inconsistent_values(override, message):
    values = values_file(DEFAULT)
    for section, fields in override.items():
        values[section] = {**values.get(section, {}), **fields}
    with pytest.raises(helm.HelmError) as refused:
        render(values)
    assert message in str(refused.value)


def test_notes_tell_where_the_services_are():
    text = notes(render(values_file(ALL_ENABLED)))
    # all-enabled serves TLS on 50051: the cluster's own callers use the plaintext port.
    assert "fleet-ofa-fleet-registry:50061" in text
    assert "registry  registry.fleet.example.com:443" in text
    assert "Ray on RayCluster fleet-ofa-fleet-ray" in text
    assert "RayJob fleet-ofa-fleet-training trains a supernet on /datasets/cifar10" in text
    assert f"-n {NAMESPACE} get secret fleet-ofa-fleet-operator-token" in text


def _training(found: list[dict[str, Any]]) -> dict[str, Any]:
    (job,) = of_kind(found, "RayJob")
    return job


@pytest.mark.parametrize("values", [TRAINING, ALL_ENABLED], ids=["training", "all-enabled"])
def test_the_training_job_runs_the_real_train_command(values):
    given = values_file(values)
    found = objects(render(given))
    job = _training(found)
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:2] == ["ofa-fleet", "train"]
    args = build_parser().parse_args(words[1:])
    training = {**values_file(CHART / "values.yaml")["training"], **given["training"]}
    checkpoint = {**values_file(CHART / "values.yaml")["search"]["checkpoint"]}
    checkpoint.update(given.get("search", {}).get("checkpoint", {}))
    assert str(args.out) == checkpoint["path"]
    assert str(args.data) == training["data"]["path"]
    assert args.workers == training["workers"] and args.resume_if_exists
    assert args.gpus_per_worker == training["gpusPerWorker"]
    assert args.device == ("cuda" if training["gpusPerWorker"] > 0 else "cpu")
    assert str(args.ray_storage).startswith(checkpoint["mountPath"] + "/")
    (group,) = job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["replicas"] == group["minReplicas"] == group["maxReplicas"] == args.workers
    resources = group["template"]["spec"]["containers"][0]["resources"]
    gpus = resources["limits"].get("nvidia.com/gpu", 0)
    assert gpus == math.ceil(args.gpus_per_worker) == resources["requests"].get("nvidia.com/gpu", 0)


def test_search_serves_the_checkpoint_the_training_job_writes():
    found = objects(render(values_file(TRAINING)))
    job = _training(found)
    (search,) = [d for d in of_kind(found, "Deployment") if component_of(d) == "search"]
    search_spec = search["spec"]["template"]["spec"]
    search_claim = next(
        v["persistentVolumeClaim"]["claimName"]
        for v in search_spec["volumes"]
        if v["name"] == "checkpoint"
    )
    claims = {c["metadata"]["name"]: c for c in of_kind(found, "PersistentVolumeClaim")}
    assert search_claim in claims, "the chart creates the training claim search mounts"
    assert claims[search_claim]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    search_args = {
        a.split("=")[0]: a.split("=", 1)[1]
        for a in search_spec["containers"][0]["args"]
        if "=" in a
    }
    train_out = next(w for w in shlex.split(job["spec"]["entrypoint"]) if w.startswith("--out="))
    assert train_out.split("=", 1)[1] == search_args["--checkpoint"]
    cluster = job["spec"]["rayClusterSpec"]
    for spec in [cluster["headGroupSpec"]["template"]["spec"]] + [
        g["template"]["spec"] for g in cluster["workerGroupSpecs"]
    ]:
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert volumes["checkpoint"]["persistentVolumeClaim"]["claimName"] == search_claim
        assert volumes["data"]["persistentVolumeClaim"] == {
            "claimName": "imagenet",
            "readOnly": True,
        }
    (worker,) = cluster["workerGroupSpecs"]
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in worker[
        "template"
    ]["spec"]["tolerations"]


def test_no_training_job_unless_asked():
    found = objects(render(values_file(DEFAULT)))
    assert not of_kind(found, "RayJob")
    assert "training" not in {component_of(c) for c in of_kind(found, "PersistentVolumeClaim")}


def test_extra_volumes_reach_the_server_s_pod_and_container():
    values = values_file(ALL_ENABLED)
    found = objects(render(values))
    (registry,) = [d for d in of_kind(found, "Deployment") if component_of(d) == "registry"]
    spec = registry["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    for volume in values["registry"]["extraVolumes"]:
        assert volume in spec["volumes"]
    for mount in values["registry"]["extraVolumeMounts"]:
        assert mount in container["volumeMounts"]
