"""Which metrics a PromQL expression reads, and which metrics the platform really exports.

Shared by the alert-rule and dashboard tests (imported by them), and tested here.
"""

from __future__ import annotations

import re

import pytest

import ml.metrics

# Third-party exporters the platform deploys, and the series of theirs we query. Keep this list
# short and explicit: each entry must be something kube-prometheus-stack really scrapes.
THIRD_PARTY_SERIES = {
    # kube-state-metrics (kube-prometheus-stack subchart): Job status per namespace/job_name.
    "kube_job_status_failed",
    "kube_job_status_succeeded",
}

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right",
    "and", "or", "unless", "bool", "offset", "inf", "nan", "atan2",
}  # fmt: skip
_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(?![\w:]|\s*\()")
_NUMBER_LIKE = re.compile(r"(?<![\w:])\d[\w.]*")  # 0.5, 1e3, 0x1f, durations like 5m


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, labels, keywords stripped).

    Handles label matchers (``{le="0.1"}``), ``{__name__="x"}`` selectors, range and subquery
    brackets, ``by``/``on``/``group_left`` label lists, ``offset``/``@`` modifiers, numbers and
    Grafana variables (``$__rate_interval``, ``${datasource}``).
    """
    names = set(_NAME_MATCHER.findall(expr))
    text = _GRAFANA_VAR.sub(" ", expr)
    # Strings go first so braces or brackets inside label values cannot confuse what follows.
    text = _STRING.sub('""', text)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = re.sub(r"@\s*[\w.()]+", " ", text)
    text = _NUMBER_LIKE.sub(" ", text)
    for ident in _IDENT.findall(text):
        if ident.lower() not in _KEYWORDS:
            names.add(ident)
    return names


def allowed_series() -> set[str]:
    """First-party series from ``ml.metrics`` plus the third-party allow-list."""
    return ml.metrics.exported_series_names() | THIRD_PARTY_SERIES


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", {"up"}),
        ('sum by (variant) (rate(a_total{le="0.1", x=~"by|rate"}[5m]))', {"a_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(b_bucket[$__rate_interval])))", {"b_bucket"}),
        ("a / ignoring(variant) group_left sum(b)", {"a", "b"}),
        ("sum(rate(x[5m])) by (job) > 1e3 and on (job) y offset 1h", {"x", "y"}),
        ("time() - max(ts_seconds) > 3600 or absent(ts_seconds)", {"ts_seconds"}),
        ('{__name__="named_metric", job="a"}', {"named_metric"}),
        ("max_over_time(rule:ratio:rate5m[1h:5m]) @ 1700000000", {"rule:ratio:rate5m"}),
        ("count(z) > bool 0.5 unless inf", {"z"}),
        ('sum by (job_name) (k{namespace="${ns}"})', {"k"}),
    ],
)
def test_metric_names(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


def test_third_party_series_are_not_first_party() -> None:
    assert not THIRD_PARTY_SERIES & ml.metrics.exported_series_names()
