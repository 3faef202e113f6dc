"""Where deploy/ and the chart live, and the metric names the contract allows."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules.yml"
CHART = ROOT / "helm" / "ofa-fleet"
CHART_RULES = CHART / "files" / "rules.yml"
METRICS_CONTRACT = DEPLOY / "METRICS.md"

# A contract line names a metric as "- name" or "- name{labels}" (first word of the item).
_CONTRACT_NAME = re.compile(r"^\s*-\s+([a-z_][a-z0-9_]*)(?:\{|\s|,|$)")


def contract_metrics() -> set[str]:
    """Every metric name deploy/METRICS.md lists (`a, b (counters)` lines give both)."""
    names: set[str] = set()
    for line in METRICS_CONTRACT.read_text().splitlines():
        match = _CONTRACT_NAME.match(line)
        if match is None:
            continue
        names.add(match.group(1))
        head = line.split("(", 1)[0]
        names.update(n for n in re.findall(r",\s*([a-z_][a-z0-9_]*_total)", head))
    return names


def contract_histograms() -> set[str]:
    """The contract's histograms: queried through their _bucket, _sum and _count series."""
    return {
        match.group(1)
        for line in METRICS_CONTRACT.read_text().splitlines()
        if "histogram" in line and (match := _CONTRACT_NAME.match(line)) is not None
    }


def known_series() -> set[str]:
    """What rules and dashboards may read: the contract's series and Prometheus's `up`."""
    histograms = contract_histograms()
    series = contract_metrics() | {"up"}
    series |= {h + suffix for h in histograms for suffix in ("_bucket", "_sum", "_count")}
    return series
