"""Prometheus alert rules for the platform: the PrometheusRule ``spec.groups``, as data.

The same list is the ``groups`` of a plain Prometheus rules file, which is how the tests feed it
to ``promtool check rules`` / ``promtool test rules``. Every alert carries a ``severity`` label
(``critical`` pages someone, ``warning`` opens a ticket) and ``summary``, ``description`` and
``runbook_url`` annotations. Annotations template only ``$labels`` (never ``$value``) so that
promtool tests can state them exactly.

This module is control plane and must not import ``ml/``: the metric names below come from
:mod:`contract.metrics`, which the workloads register their metrics from; a name the contract
does not export fails at import.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.metrics import exported_series_names


def _series(name: str, suffix: str = "") -> str:
    """The series ``name + suffix`` of a metric declared in :data:`contract.metrics.EXPORTED`.

    Raises at import if the contract does not declare ``name`` with a kind that yields
    ``suffix``, so a renamed or dropped metric breaks the rules' import, not a dashboard later.
    """
    series = name + suffix
    if series not in exported_series_names():
        raise KeyError(f"{series} is not exported by any workload (contract.metrics)")
    return series


class M:
    """Series this module and :mod:`components.dashboards` query (see ``contract.metrics``)."""

    PREDICTIONS = _series("mlops_predictions", "_total")
    LATENCY_BUCKET = _series("mlops_prediction_latency_seconds", "_bucket")
    LATENCY_COUNT = _series("mlops_prediction_latency_seconds", "_count")
    LATENCY_SUM = _series("mlops_prediction_latency_seconds", "_sum")
    ERRORS = _series("mlops_request_errors", "_total")
    SHADOW = _series("mlops_shadow_predictions", "_total")
    MODEL_INFO = _series("mlops_model_info")
    VARIANT_AVAILABLE = _series("mlops_variant_available")
    LOG_RECORDS = _series("mlops_prediction_log_records", "_total")
    SCORE_BUCKET = _series("mlops_prediction_score", "_bucket")
    SCORE_SUM = _series("mlops_prediction_score", "_sum")
    SCORE_COUNT = _series("mlops_prediction_score", "_count")
    # pushed by `mlops features materialize` per feature view
    MATERIALIZED_UNTIL = _series("mlops_feature_materialized_until_timestamp_seconds")
    FEATURES_MISSING = _series("mlops_online_features_missing", "_total")
    DRIFT_SHARE = _series("mlops_drift_share")
    FEATURE_DRIFT_PVALUE = _series("mlops_feature_drift_pvalue")
    DRIFT_DETECTED = _series("mlops_drift_detected")
    PREDICTION_DRIFT_PVALUE = _series("mlops_prediction_drift_pvalue")
    MODEL_QUALITY = _series("mlops_model_quality")
    MONITOR_LAST_RUN = _series("mlops_monitor_last_run_timestamp_seconds")
    PIPELINE_RUNS = _series("mlops_pipeline_runs", "_total")
    PIPELINE_LAST_SUCCESS = _series("mlops_pipeline_last_success_timestamp_seconds")
    PROMOTIONS = _series("mlops_model_promotions", "_total")
    # kube-state-metrics (third party, shipped by kube-prometheus-stack; emulated in the e2e)
    KUBE_JOB_FAILED = "kube_job_status_failed"


# Serving SLO: 99% of predictions answered within 100 ms (p99 <= 100 ms), so the error budget is
# 1% of requests. The threshold must be a bucket boundary of ml.metrics.LATENCY_BUCKETS.
LATENCY_SLO_SECONDS = "0.1"
LATENCY_SLO_TARGET = 0.99
ERROR_BUDGET = round(1 - LATENCY_SLO_TARGET, 6)

# Multi-window, multi-burn-rate alerting (Google SRE workbook, "Alerting on SLOs", table 5-8):
# (long window, short window, burn rate). The long window measures, the short one makes the
# alert stop soon after the problem does.
FAST_BURN = (("1h", "5m", 14.4), ("6h", "30m", 6.0))  # 2% / 5% of a 30-day budget: page
SLOW_BURN = (("1d", "2h", 3.0), ("3d", "6h", 1.0))  # 10% of the budget in a day: ticket
SLO_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")

ERROR_RATE_THRESHOLD = 0.05
DRIFT_SHARE_CRITICAL = 0.5
FEATURE_MAX_AGE_SECONDS = 2 * 3600  # two missed hourly materializations
MONITOR_MAX_AGE_SECONDS = 3 * 3600  # the drift monitor runs hourly
PIPELINE_MAX_AGE_SECONDS = 26 * 3600  # daily retraining plus two hours of slack

DEFAULT_RUNBOOK_BASE = "docs/runbooks.md"


@dataclass(frozen=True)
class Alert:
    """One alerting rule; ``summary``/``description`` may use ``{{ $labels.<name> }}`` only."""

    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = "0m"
    runbook: tuple[str, ...] = ()


def slo_ratio_name(window: str) -> str:
    """Recorded series: share of predictions slower than the SLO over ``window``, per variant."""
    return f"mlops:prediction_latency_slo_violations:ratio_rate{window}"


def _slo_recording_rules() -> list[dict]:
    return [
        {
            "record": slo_ratio_name(w),
            "expr": (
                f"1 - sum by (variant)"
                f' (rate({M.LATENCY_BUCKET}{{le="{LATENCY_SLO_SECONDS}"}}[{w}]))'
                f" / sum by (variant) (rate({M.LATENCY_COUNT}[{w}]))"
            ),
        }
        for w in SLO_WINDOWS
    ]


def _burn_expr(windows: tuple[tuple[str, str, float], ...]) -> str:
    clauses = [
        f"({slo_ratio_name(long)} > {rate * ERROR_BUDGET:g}"
        f" and {slo_ratio_name(short)} > {rate * ERROR_BUDGET:g})"
        for long, short, rate in windows
    ]
    return " or ".join(clauses)


def _errors_by_variant(window: str = "5m") -> str:
    return f"sum by (variant) (rate({M.ERRORS}[{window}]))"


_SLO_RUNBOOK = (
    "Open the Service health dashboard; compare p99 per variant with the 100 ms SLO.",
    "If one variant is slow, move its traffic weight to the champion (stack config), redeploy.",
    "Check HPA replicas and CPU throttling of the serving Deployment; scale out if saturated.",
    "Check the online feature store (Redis) latency: feature lookups are on the request path.",
)

_ALERTS: dict[str, tuple[Alert, ...]] = {
    "mlops-serving": (
        Alert(
            "MlopsLatencySLOFastBurn",
            _burn_expr(FAST_BURN),
            "critical",
            "Serving variant {{ $labels.variant }} is burning its latency error budget fast",
            "More than 1% of predictions of variant {{ $labels.variant }} take over 100 ms, at a"
            " rate that spends 2% of the 30-day budget in an hour (or 5% in six hours).",
            "2m",
            _SLO_RUNBOOK,
        ),
        Alert(
            "MlopsLatencySLOSlowBurn",
            _burn_expr(SLOW_BURN),
            "warning",
            "Serving variant {{ $labels.variant }} is slowly burning its latency error budget",
            "Predictions of variant {{ $labels.variant }} exceed 100 ms often enough to spend"
            " 10% of the 30-day error budget in a day (or all of it in a month).",
            "15m",
            _SLO_RUNBOOK,
        ),
        Alert(
            "MlopsHighErrorRate",
            # errors / (errors + answered); the `or` keeps a variant that only errors visible.
            f"{_errors_by_variant()} / ({_errors_by_variant()}"
            f" + (sum by (variant) (rate({M.PREDICTIONS}[5m])) or {_errors_by_variant()} * 0))"
            f" > {ERROR_RATE_THRESHOLD:g}",
            "critical",
            "Serving variant {{ $labels.variant }} answers more than 5% of requests with errors",
            "Over the last 5 minutes more than 5% of requests to variant {{ $labels.variant }}"
            " failed. Check the serving logs and the model's input schema.",
            "5m",
            (
                "Look at the error codes per variant on the Service health dashboard.",
                "4xx: a client sends a new schema; 5xx: read the serving pod logs.",
                "If only the challenger fails, set its traffic weight to 0 and redeploy.",
            ),
        ),
    ),
    "mlops-drift": (
        Alert(
            "MlopsDatasetDriftDetected",
            f"max({M.DRIFT_DETECTED}) == 1",
            "warning",
            "Dataset drift detected in live traffic",
            "The drift monitor's last window found dataset drift and wrote a retraining request;"
            " the retrain CronJob picks it up. Check that it ran and what the gate decided.",
            "0m",
            (
                "Open the Model quality and drift dashboard: which features drifted?",
                "Check that the next pipeline-retrain Job consumed the trigger, and its gate.",
            ),
        ),
        Alert(
            "MlopsDriftShareCritical",
            f"max({M.DRIFT_SHARE}) >= {DRIFT_SHARE_CRITICAL:g}",
            "critical",
            "Half or more of the model's features drifted",
            "At least half of the features failed their drift test at once. That is more often a"
            " broken upstream feed or feature pipeline than a real change in the population.",
            "0m",
            (
                "Compare the drifted features' distributions with the source data.",
                "Check the latest materialization Job and upstream data loads before retraining.",
            ),
        ),
        Alert(
            "MlopsDriftMonitorStale",
            f"time() - max({M.MONITOR_LAST_RUN}) > {MONITOR_MAX_AGE_SECONDS}"
            f" or absent({M.MONITOR_LAST_RUN})",
            "warning",
            "The drift monitor has not reported for over 3 hours",
            "Without the monitor, drift and quality drops go unnoticed. Check its CronJob and"
            " the Pushgateway.",
            "10m",
            ("Check the drift-monitor CronJob's last Jobs and logs; check the Pushgateway.",),
        ),
    ),
    "mlops-features": (
        Alert(
            "MlopsFeaturesStale",
            f"time() - max by (feature_view) ({M.MATERIALIZED_UNTIL}) > {FEATURE_MAX_AGE_SECONDS}",
            "warning",
            "Online features of {{ $labels.feature_view }} are stale",
            "Feature view {{ $labels.feature_view }} was last materialized up to more than"
            " 2 hours ago: predictions use outdated features.",
            "10m",
            (
                "Check the feast-materialize CronJob's last Jobs and logs.",
                "Check the offline store has fresh data and the online store is reachable.",
            ),
        ),
    ),
    "mlops-jobs": (
        Alert(
            "MlopsJobFailed",
            # "{namespace}" is filled in by rule_groups(namespace=...).
            f'sum by (namespace, job_name) ({M.KUBE_JOB_FAILED}{{namespace="{{namespace}}"}}) > 0',
            "warning",
            "Job {{ $labels.job_name }} failed",
            "Kubernetes Job {{ $labels.namespace }}/{{ $labels.job_name }} has failed pods"
            " (materialization, drift monitor, retraining or governance).",
            "1m",
            ("kubectl -n <namespace> logs job/<job_name>; fix and re-run the CronJob by hand.",),
        ),
        Alert(
            "MlopsPipelineRunOverdue",
            f"time() - {M.PIPELINE_LAST_SUCCESS} > {PIPELINE_MAX_AGE_SECONDS}",
            "warning",
            "Pipeline {{ $labels.pipeline }} has not succeeded for over 26 hours",
            "The last successful run of pipeline {{ $labels.pipeline }} is older than a day:"
            " the model is not being refreshed.",
            "10m",
            ("Check the pipeline CronJob's recent Jobs and the MLflow runs they produced.",),
        ),
        Alert(
            "MlopsPipelineNeverSucceeded",
            f"absent({M.PIPELINE_LAST_SUCCESS})",
            "warning",
            "No pipeline has reported a successful run",
            "No pipeline success timestamp has been pushed for 26 hours: retraining never"
            " succeeded since the platform (or the Pushgateway) started.",
            "26h",
            ("Check the retraining CronJob exists, is not suspended, and can push metrics.",),
        ),
    ),
}


def alerts() -> list[Alert]:
    """Every alert, in rule-file order."""
    return [a for group in _ALERTS.values() for a in group]


def _rule(alert: Alert, runbook_base: str, namespace: str) -> dict:
    return {
        "alert": alert.name,
        "expr": alert.expr.replace("{namespace}", namespace),
        "for": alert.for_,
        "labels": {"severity": alert.severity},
        "annotations": {
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": f"{runbook_base}#{alert.name.lower()}",
        },
    }


def rule_groups(namespace: str = "mlops", runbook_base: str = DEFAULT_RUNBOOK_BASE) -> list[dict]:
    """The PrometheusRule ``spec.groups`` list (also a promtool rules file's ``groups``).

    Args:
        namespace: where the platform's Jobs run (the failed-job alert watches only these).
        runbook_base: URL of the runbook page; each alert links to ``#<alertname lowercased>``.
    """
    groups = [{"name": "mlops-slo-recording", "interval": "1m", "rules": _slo_recording_rules()}]
    for name, group in _ALERTS.items():
        rules = [_rule(a, runbook_base, namespace) for a in group]
        groups.append({"name": name, "interval": "1m", "rules": rules})
    return groups


def runbooks_markdown() -> str:
    """A Markdown runbook page with one ``## <AlertName>`` section per alert."""
    lines = ["# Alert runbooks", ""]
    for a in alerts():
        lines += [f"## {a.name}", "", f"Severity: {a.severity}. {a.description}", ""]
        lines += [f"{i}. {step}" for i, step in enumerate(a.runbook, 1)] + [""]
    return "\n".join(lines)
