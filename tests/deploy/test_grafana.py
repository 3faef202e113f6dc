"""deploy/grafana/dashboard.json: every panel has a datasource, every query reads only
the metric contract's series or recorded rules, parses as PromQL (promtool checks it),
and the issue's subjects all have a panel."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
import yaml

from tests import tools
from tests.deploy.paths import DEPLOY, RULES, known_series
from tests.deploy.promql import metric_names

DASHBOARD = DEPLOY / "grafana" / "dashboard.json"
# Grafana's variables, replaced by what they stand for when promtool parses a query.
VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m", "$fleet": ".*"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    panels = []
    for panel in dashboard["panels"]:
        panels.extend(panel.get("panels", []))
        if panel["type"] != "row":
            panels.append(panel)
    return panels


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in _panels(dashboard) for target in panel["targets"]]


def test_every_panel_has_a_datasource_and_queries(dashboard):
    for panel in _panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"]
            assert target["expr"].strip()


def test_panel_ids_and_query_ref_ids_are_unique(dashboard):
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in _panels(dashboard):
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_panels_do_not_overlap(dashboard):
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))


def test_queries_read_only_contract_metrics_and_recorded_rules(dashboard):
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    allowed = known_series() | recorded
    variables = [v["definition"] for v in dashboard["templating"]["list"] if v["type"] == "query"]
    for expr in _exprs(dashboard) + [v.split("(", 1)[1].split(",")[0] for v in variables]:
        names = metric_names(expr)
        assert names, f"{expr!r} reads no metric"
        assert names <= allowed, f"{expr!r} reads {names - allowed}"


def test_the_issue_s_subjects_each_have_a_panel(dashboard):
    read = set().union(*(metric_names(expr) for expr in _exprs(dashboard)))
    assert {
        "ofa_fleet_fleet_coverage_ratio",
        "ofa_fleet_boot_to_model_seconds_bucket",
        "grpc_server_handled_total",
        "ofa_fleet:model_download_error_ratio:rate5m",
        "ofa_fleet_model_bytes_served_total",
        "ofa_fleet_specialization_seconds_bucket",
        "ofa_fleet_specializations_total",
        "ofa_fleet_reconciler_queue_depth",
        "ofa_fleet_latency_prediction_ratio_bucket",
        "ofa_fleet_search_candidates_evaluated_total",
    } <= read
    exprs = "\n".join(_exprs(dashboard))
    assert "histogram_quantile(0.5, sum by (le) (rate(ofa_fleet_boot_to_model_seconds" in exprs
    assert "histogram_quantile(0.99, sum by (le) (rate(ofa_fleet_boot_to_model_seconds" in exprs


def test_every_query_parses_as_promql(dashboard, tmp_path):
    def substitute(expr: str) -> str:
        for variable, value in VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"unknown variable in {expr!r}"
        return expr

    rules = [
        {"record": f"dashboard:query_{n}:check", "expr": substitute(expr)}
        for n, expr in enumerate(_exprs(dashboard))
    ]
    (tmp_path / "queries.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]})
    )
    result = subprocess.run(
        [str(tools.promtool()), "check", "rules", "queries.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(rules)} rules found" in result.stdout


def test_figures_every_replica_reports_alike_are_not_added_up(dashboard):
    """Each registry replica reports every fleet's device count, each delivery replica
    the shared ledger's gauges, and coverage moves with the reconciler's leader: a panel
    takes the max of the replicas' series first (a sum would count devices twice)."""
    shared = (
        "ofa_fleet_devices_registered",
        "ofa_fleet_devices_on_current_model",
        "ofa_fleet_fleet_coverage_ratio",
        "ofa_fleet_specializations_failing",
        "ofa_fleet_specializations_pending",
    )
    checked = 0
    for expr in _exprs(dashboard):
        flat = " ".join(expr.split())
        for name in shared:
            at = flat.find(name)
            while at != -1:
                assert flat[:at].rstrip().endswith(("max(", "max by (fleet) (")), expr
                checked += 1
                at = flat.find(name, at + 1)
    assert checked >= len(shared)
