"""Metric names and label sets the first-party workloads export, defined once.

Serving, the drift monitor and the pipeline register these (``ml.metrics``); alert rules and
dashboards (``components.alerting``, ``components.dashboards``) query them. The e2e run checks
that every series a rule or panel names was actually scraped by Prometheus.
"""

from __future__ import annotations

from dataclasses import dataclass

# Latency buckets (seconds) around the serving SLO of 100 ms p99.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: str  # counter | gauge | histogram
    help: str
    labels: tuple[str, ...] = ()


EXPORTED: tuple[MetricSpec, ...] = (
    # serving (scraped from every BentoML variant Deployment)
    MetricSpec(
        "mlops_predictions", "counter", "Predictions answered.", ("variant", "model_version")
    ),
    MetricSpec(
        "mlops_prediction_latency_seconds",
        "histogram",
        "Latency of live predictions.",
        ("variant",),
    ),
    MetricSpec(
        "mlops_request_errors", "counter", "Requests answered with an error.", ("variant", "code")
    ),
    MetricSpec(
        "mlops_shadow_predictions", "counter", "Shadow predictions made.", ("variant", "outcome")
    ),
    MetricSpec(
        "mlops_model_info",
        "gauge",
        "1 for the model version a variant serves.",
        ("variant", "model_name", "model_version"),
    ),
    MetricSpec(
        "mlops_prediction_score", "histogram", "Predicted default probability.", ("variant",)
    ),
    MetricSpec(
        "mlops_variant_available",
        "gauge",
        "1 if a policy variant has a servable model, 0 if it is skipped (e.g. alias unset).",
        ("variant",),
    ),
    MetricSpec(
        "mlops_prediction_log_records",
        "counter",
        "Prediction-log records by outcome: shipped to the object store, or dropped.",
        ("outcome",),
    ),
    # feature store
    MetricSpec(
        "mlops_feature_materialized_until_timestamp_seconds",
        "gauge",
        "End of the last materialization window loaded into the online store (pushed).",
        ("feature_view",),
    ),
    MetricSpec(
        "mlops_online_features_missing",
        "counter",
        "Online feature lookups that found no value.",
        ("feature_view",),
    ),
    # drift and quality monitor (pushed)
    MetricSpec("mlops_drift_share", "gauge", "Share of features whose drift test fired.", ()),
    MetricSpec(
        "mlops_feature_drift_pvalue", "gauge", "Drift test p-value per feature.", ("feature",)
    ),
    MetricSpec(
        "mlops_drift_detected", "gauge", "1 if dataset drift was detected in the last window.", ()
    ),
    MetricSpec(
        "mlops_prediction_drift_pvalue", "gauge", "Drift test p-value of the prediction score.", ()
    ),
    MetricSpec(
        "mlops_model_quality", "gauge", "Model quality on labelled recent traffic.", ("metric",)
    ),
    MetricSpec(
        "mlops_monitor_last_run_timestamp_seconds", "gauge", "When the monitor last finished.", ()
    ),
    # pipeline (pushed)
    MetricSpec(
        "mlops_pipeline_runs", "counter", "Pipeline runs by outcome.", ("pipeline", "status")
    ),
    MetricSpec(
        "mlops_pipeline_last_success_timestamp_seconds",
        "gauge",
        "Last successful run.",
        ("pipeline",),
    ),
    MetricSpec("mlops_model_promotions", "counter", "Promotion decisions.", ("decision",)),
)


def exported_series_names() -> set[str]:
    """Every series name a scrape can show, including counter and histogram suffixes."""
    names: set[str] = set()
    for spec in EXPORTED:
        if spec.kind == "counter":
            names |= {f"{spec.name}_total", f"{spec.name}_created"}
        elif spec.kind == "histogram":
            names |= {f"{spec.name}_{s}" for s in ("bucket", "sum", "count", "created")}
        else:
            names.add(spec.name)
    return names
