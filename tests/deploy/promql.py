"""The metric names a PromQL expression reads, without a PromQL parser.

Enough for the expressions in rules.yml and the dashboard: strings, label matchers,
range selectors and grouping clauses are cut first, so what is left that is not a
function, a keyword or a number is a metric name. promtool parses the same expressions
for real (tests/deploy/test_prometheus.py, test_grafana.py); this only names what they read.
"""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.IGNORECASE
)
_IDENTIFIER = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w(])(?!\s*\()")
_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "offset", "bool", "inf", "nan", "atan2", "start", "end",
}  # fmt: skip
_DURATION = re.compile(r"^\d")


def metric_names(expr: str) -> set[str]:
    text = _STRING.sub('""', expr)
    text = _MATCHERS.sub("", text)
    text = _RANGE.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(1)
        if word.lower() in _KEYWORDS or _DURATION.match(word):
            continue
        names.add(word)
    return names


def base_name(name: str, histograms: set[str]) -> str:
    """`x_bucket`, `x_sum`, `x_count` of a histogram `x` are `x`."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in histograms:
            return name.removesuffix(suffix)
    return name
