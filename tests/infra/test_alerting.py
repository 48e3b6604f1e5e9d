"""Alert rules: names tie to ml.metrics, every rule is well-formed, and promtool proves each
alert fires when it should and stays quiet when it should not."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components import alerting

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_alerting_promql import allowed_series, metric_names
except ImportError:  # pragma: no cover
    from tests.infra.test_alerting_promql import allowed_series, metric_names

NAMESPACE = "mlops"

# Per alert: cases that must fire (input series, eval time, labels of each expected alert) and
# cases that must not (input series, eval time). Series are sampled every minute.
Series = dict[str, str]
FIRES: dict[str, list[tuple[Series, str, list[dict[str, str]]]]] = {}
QUIET: dict[str, list[tuple[Series, str]]] = {}


def _latency(total_per_min: int, fast_per_min: int) -> Series:
    return {
        'mlops_prediction_latency_seconds_count{variant="champion"}': f"0+{total_per_min}x120",
        'mlops_prediction_latency_seconds_bucket{variant="champion",le="0.1"}': (
            f"0+{fast_per_min}x120"
        ),
    }


CHAMPION = {"variant": "champion"}
FIRES["MlopsLatencySLOFastBurn"] = [(_latency(100, 80), "1h", [CHAMPION])]  # 20% slow
QUIET["MlopsLatencySLOFastBurn"] = [(_latency(100, 95), "1h"), (_latency(1000, 995), "1h")]
FIRES["MlopsLatencySLOSlowBurn"] = [(_latency(100, 95), "1h", [CHAMPION])]  # 5% slow
QUIET["MlopsLatencySLOSlowBurn"] = [(_latency(1000, 995), "1h")]  # 0.5% slow: within budget

FIRES["MlopsHighErrorRate"] = [
    (
        {
            'mlops_request_errors_total{variant="champion",code="500"}': "0+10x30",
            'mlops_predictions_total{variant="champion",model_version="3"}': "0+90x30",
            # a variant that answers nothing but errors has no predictions series at all
            'mlops_request_errors_total{variant="challenger",code="500"}': "0+5x30",
        },
        "20m",
        [CHAMPION, {"variant": "challenger"}],
    )
]
QUIET["MlopsHighErrorRate"] = [
    (
        {
            'mlops_request_errors_total{variant="champion",code="500"}': "0+1x30",
            'mlops_predictions_total{variant="champion",model_version="3"}': "0+99x30",
        },
        "20m",
    )
]

FIRES["MlopsDatasetDriftDetected"] = [({"mlops_drift_detected": "1x10"}, "5m", [{}])]
QUIET["MlopsDatasetDriftDetected"] = [({"mlops_drift_detected": "0x10"}, "5m")]
FIRES["MlopsDriftShareCritical"] = [({"mlops_drift_share": "0.6x10"}, "5m", [{}])]
QUIET["MlopsDriftShareCritical"] = [({"mlops_drift_share": "0.3x10"}, "5m")]

UNRELATED = {'up{job="prometheus"}': "1x1700"}
FIRES["MlopsDriftMonitorStale"] = [
    ({"mlops_monitor_last_run_timestamp_seconds": "0x300"}, "4h", [{}]),  # last ran at t=0
    (UNRELATED, "1h", [{}]),  # never ran
]
QUIET["MlopsDriftMonitorStale"] = [
    ({"mlops_monitor_last_run_timestamp_seconds": "0+60x300"}, "4h"),  # runs every minute
]

# promtool starts its clock at 0: a view materialized up to t=0 is 2 h old at 2 h.
UNTIL = 'mlops_feature_materialized_until_timestamp_seconds{feature_view="customer_features"}'
FIRES["MlopsFeaturesStale"] = [({UNTIL: "0x200"}, "150m", [{"feature_view": "customer_features"}])]
QUIET["MlopsFeaturesStale"] = [({UNTIL: "0+60x200"}, "150m")]  # materialized every minute

JOB_LABELS = {"namespace": NAMESPACE, "job_name": "retrain-29000000"}
FIRES["MlopsJobFailed"] = [
    (
        {
            f'kube_job_status_failed{{job="kube-state-metrics",namespace="{NAMESPACE}",'
            'job_name="retrain-29000000"}': "0 0 1x10"
        },
        "10m",
        [JOB_LABELS],
    )
]
QUIET["MlopsJobFailed"] = [
    (
        {
            'kube_job_status_failed{namespace="other-team",job_name="etl-1"}': "1x10",
            f'kube_job_status_failed{{namespace="{NAMESPACE}",job_name="retrain-1"}}': "0x10",
        },
        "10m",
    )
]

LAST_SUCCESS = 'mlops_pipeline_last_success_timestamp_seconds{pipeline="retrain"}'
FIRES["MlopsPipelineRunOverdue"] = [({LAST_SUCCESS: "0x1700"}, "27h", [{"pipeline": "retrain"}])]
QUIET["MlopsPipelineRunOverdue"] = [({LAST_SUCCESS: "0+60x1700"}, "27h")]
FIRES["MlopsPipelineNeverSucceeded"] = [(UNRELATED, "27h", [{}])]
QUIET["MlopsPipelineNeverSucceeded"] = [({LAST_SUCCESS: "0x1700"}, "27h"), (UNRELATED, "25h")]

_TEMPLATE_LABEL = re.compile(r"\{\{\s*\$labels\.(\w+)\s*\}\}")


def _expected_alert(rule: dict, labels: dict[str, str]) -> dict:
    def render(text: str) -> str:
        return _TEMPLATE_LABEL.sub(lambda m: labels[m.group(1)], text)

    return {
        "exp_labels": {**labels, **rule["labels"]},
        "exp_annotations": {k: render(v) for k, v in rule["annotations"].items()},
    }


def _rules_by_alert() -> dict[str, dict]:
    groups = alerting.rule_groups(namespace=NAMESPACE)
    return {r["alert"]: r for g in groups for r in g["rules"] if "alert" in r}


def _unit_tests() -> list[dict]:
    rules = _rules_by_alert()
    tests = []
    for name, cases in FIRES.items():
        for series, at, labels in cases:
            exp = [_expected_alert(rules[name], lbl) for lbl in labels]
            tests.append((series, at, name, exp))
    for name, quiet_cases in QUIET.items():
        tests += [(series, at, name, []) for series, at in quiet_cases]
    return [
        {
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series.items()],
            "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": exp}],
        }
        for series, at, name, exp in tests
    ]


def _promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is missing in CI — .ci/run must call `scripts/services.sh install`")
    pytest.skip("promtool not installed — run `scripts/services.sh install` (Debian prometheus)")


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    names = set(_rules_by_alert())
    assert set(FIRES) == names
    assert set(QUIET) == names


def _hours(duration: str) -> float:
    value, unit = float(duration[:-1]), duration[-1]
    return value * {"m": 1 / 60, "h": 1, "d": 24}[unit]


def _run(promtool: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([promtool, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def run_promtool(groups: list[dict], tmp_path: Path) -> None:
    """``promtool check rules`` and ``promtool test rules`` (every FIRES/QUIET case) on a rules
    file holding ``groups``; fails the test with promtool's output."""
    promtool = _promtool()
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    # Day-long cases are evaluated every 5 minutes instead of every minute (5x faster); every
    # `for:` they exercise is a multiple of 5 minutes.
    files = []
    for interval, cases in (
        ("1m", [t for t in _unit_tests() if _hours(_eval_time(t)) < 24]),
        ("5m", [t for t in _unit_tests() if _hours(_eval_time(t)) >= 24]),
    ):
        path = tmp_path / f"tests-{interval}.yml"
        doc = {"rule_files": [rules.name], "evaluation_interval": interval, "tests": cases}
        path.write_text(yaml.safe_dump(doc))
        files.append(str(path))
    procs = [_run(promtool, "check", "rules", str(rules))]
    procs += [_run(promtool, "test", "rules", f) for f in files]  # in parallel
    for proc in procs:
        out, _ = proc.communicate(timeout=50)
        assert proc.returncode == 0, f"{' '.join(map(str, proc.args))}:\n{out.decode()}"


def test_promtool_check_and_test_rules(tmp_path: Path) -> None:
    # The same data the Monitoring component puts into the PrometheusRule's spec.groups.
    run_promtool(alerting.rule_groups(namespace=NAMESPACE), tmp_path)


def _eval_time(test: dict) -> str:
    return test["alert_rule_test"][0]["eval_time"]


def test_metric_constants_match_ml_metrics() -> None:
    constants = {v for k, v in vars(alerting.M).items() if k.isupper()}
    assert constants <= allowed_series(), constants - allowed_series()


def test_rule_expressions_use_only_exported_or_recorded_series() -> None:
    groups = alerting.rule_groups()
    recorded = {r["record"] for g in groups for r in g["rules"] if "record" in r}
    for group in groups:
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - allowed_series() - recorded
            assert not unknown, f"{rule.get('alert') or rule['record']} reads {unknown}"


@pytest.mark.parametrize("rule", list(_rules_by_alert().values()), ids=lambda r: r["alert"])
def test_alert_has_severity_and_annotations(rule: dict) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    assert {"summary", "description", "runbook_url"} <= set(rule["annotations"])
    assert rule["annotations"]["runbook_url"].endswith("#" + rule["alert"].lower())
    assert "$value" not in str(rule["annotations"])  # keeps promtool expectations exact


def test_latency_slo_threshold_is_a_histogram_bucket() -> None:
    import ml.metrics

    assert float(alerting.LATENCY_SLO_SECONDS) in ml.metrics.LATENCY_BUCKETS


def test_runbooks_cover_every_alert() -> None:
    page = alerting.runbooks_markdown()
    for name in _rules_by_alert():
        assert f"## {name}" in page


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", pytest.fail.Exception), ("", pytest.skip.Exception)]
)
def test_missing_promtool_skips_locally_but_fails_in_ci(monkeypatch, ci, outcome) -> None:
    monkeypatch.setattr(shutil, "which", lambda _name: None)
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match=r"scripts/services\.sh install"):
        _promtool()


@pytest.mark.parametrize(
    ("name", "suffix"),
    [("mlops_feature_freshness_seconds", ""), ("mlops_predictions", ""), ("mlops_nope", "_total")],
)
def test_a_series_no_workload_exports_is_refused(name: str, suffix: str) -> None:
    with pytest.raises(KeyError, match="not exported"):
        alerting._series(name, suffix)
