"""deploy/prometheus: the scrape config and rules pass promtool, the rules read only the
metric contract's names, and every alert is unit-tested firing and quiet."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import tools
from tests.deploy.paths import DEPLOY, PROMETHEUS, RULES, contract_histograms, known_series
from tests.deploy.promql import metric_names

RULES_TEST = PROMETHEUS / "rules_test.yml"


def _promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools.promtool()), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def _rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _alerts() -> list[str]:
    return [rule["alert"] for rule in _rules() if "alert" in rule]


def test_contract_lists_the_metrics_the_issue_names():
    histograms = contract_histograms()
    assert {
        "ofa_fleet_boot_to_model_seconds",
        "ofa_fleet_specialization_seconds",
        "ofa_fleet_latency_prediction_ratio",
        "grpc_server_handling_seconds",
    } <= histograms
    assert {"grpc_server_started_total", "ofa_fleet_fleet_coverage_ratio"} <= known_series()


def test_rules_read_only_contract_metrics_and_recorded_series():
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    allowed = known_series() | recorded
    for rule in _rules():
        names = metric_names(rule["expr"])
        assert names, f"{rule.get('alert') or rule.get('record')} reads no metric"
        unknown = names - allowed
        assert not unknown, f"{rule.get('alert') or rule.get('record')} reads {unknown}"


def test_recorded_series_are_named_level_metric_operation():
    for rule in _rules():
        if "record" in rule:
            assert rule["record"].count(":") == 2, rule["record"]


def test_the_issue_s_alerts_exist():
    assert {
        "OfaFleetCoverageDropping",
        "OfaFleetModelDownloadErrorRatioHigh",
        "OfaFleetBootToModelSlow",
        "OfaFleetSpecializationStuck",
        "OfaFleetLatencyMisprediction",
    } <= set(_alerts())


def test_every_alert_links_its_own_runbook_section():
    """runbook_url names deploy/RUNBOOKS.md and the alert's heading there (GitHub's anchor
    for a heading is its lower-cased text), and every section is an alert's."""
    headings = [
        line.removeprefix("## ").strip()
        for line in (DEPLOY / "RUNBOOKS.md").read_text().splitlines()
        if line.startswith("## ")
    ]
    alerts = [rule for rule in _rules() if "alert" in rule]
    for rule in alerts:
        url = rule["annotations"].get("runbook_url", "")
        assert url == f"deploy/RUNBOOKS.md#{rule['alert'].lower()}", rule["alert"]
    assert sorted(headings) == sorted(rule["alert"] for rule in alerts)


def test_alerts_on_shared_figures_do_not_fire_once_per_replica():
    """Gauges every replica exports alike (read from a shared database, or exported by
    whichever replica leads) are aggregated before they are compared, so an alert fires
    once, and a series that moves to another pod still compares with its past."""
    shared = (
        "ofa_fleet_specializations_failing",
        "ofa_fleet_specializations_pending",
        "ofa_fleet_specializations_infeasible",
        "ofa_fleet_fleet_coverage_ratio",
        "ofa_fleet_devices_registered",
    )
    for rule in _rules():
        if "alert" not in rule:
            continue
        expr = " ".join(rule["expr"].split())
        for name in shared:
            at = expr.find(name)
            while at != -1:
                before = expr[:at].rstrip()
                assert before.endswith(("max(", "max by (fleet) (")), (rule["alert"], name)
                at = expr.find(name, at + 1)


def test_promtool_check_config():
    result = _promtool("check", "config", "prometheus.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 rule files found" in result.stdout


def test_promtool_check_rules():
    result = _promtool("check", "rules", "rules.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(_rules())} rules found" in result.stdout


def test_promtool_check_rules_rejects_a_broken_expression(tmp_path):
    broken = yaml.safe_load(RULES.read_text())
    broken["groups"][1]["rules"][0]["expr"] = "rate(up[5m]"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(broken))
    result = _promtool("check", "rules", "rules.yml", cwd=tmp_path)
    assert result.returncode != 0


def test_every_alert_has_a_firing_and_a_quiet_case():
    cases: dict[str, set[bool]] = {alert: set() for alert in _alerts()}
    for group in yaml.safe_load(RULES_TEST.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            cases[case["alertname"]].add(bool(case["exp_alerts"]))
    missing = {alert: seen for alert, seen in cases.items() if seen != {True, False}}
    assert not missing, f"alerts without both a firing and a quiet case: {missing}"


@pytest.mark.integration
def test_promtool_test_rules():
    result = _promtool("test", "rules", "rules_test.yml", cwd=PROMETHEUS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.integration
@pytest.mark.parametrize("alert", _alerts())
def test_an_alert_that_never_fires_fails_its_tests(alert, tmp_path):
    """Each alert's firing cases really depend on its expression."""
    rules = yaml.safe_load(RULES.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                rule["expr"] = "vector(1) == 0"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    suite = yaml.safe_load(RULES_TEST.read_text())
    suite["tests"] = [
        group
        for group in suite["tests"]
        if any(case["alertname"] == alert for case in group.get("alert_rule_test", []))
    ]
    (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(suite))
    result = _promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert alert in result.stdout + result.stderr
