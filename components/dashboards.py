"""Grafana dashboards as code, built with grafana-foundation-sdk.

:func:`dashboards` returns ``{file name: dashboard JSON model}``; the Monitoring component puts
each into a ConfigMap that Grafana's dashboard sidecar provisions. Every panel is described as
data (:class:`Panel`) and turned into SDK builders in one place. Queries use only the series in
:class:`components.alerting.M` (copies of ``ml.metrics``; ``tests/infra/test_dashboards.py``
checks every expression against what the services export) and a ``$datasource`` variable, so
the dashboards work with whatever Prometheus data source Grafana has.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from grafana_foundation_sdk.builders import dashboard, heatmap, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from components.alerting import LATENCY_SLO_SECONDS, M

REFRESH = "30s"  # the platform promises dashboards refreshed within a minute
RATE = "$__rate_interval"  # Grafana picks a window that is safe for the scrape interval
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["mlops"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    format: str = "time_series"  # time_series | table | heatmap
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    """One panel. ``kind`` is timeseries | stat | heatmap | table; ``width`` is of 24 columns."""

    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    description: str = ""


def _by_variant(metric: str, agg: str = "rate", window: str = RATE) -> str:
    return f"sum by (variant) ({agg}({metric}[{window}]))"


def _quantile(q: float, metric: str = M.LATENCY_BUCKET) -> str:
    return f"histogram_quantile({q}, sum by (variant, le) (rate({metric}[{RATE}])))"


_ERROR_RATIO = (
    f"{_by_variant(M.ERRORS)} / ({_by_variant(M.ERRORS)}"
    f" + ({_by_variant(M.PREDICTIONS)} or {_by_variant(M.ERRORS)} * 0))"
)
_SLO_SHARE = (
    f'sum(rate({M.LATENCY_BUCKET}{{le="{LATENCY_SLO_SECONDS}"}}[1d]))'
    f" / sum(rate({M.LATENCY_COUNT}[1d]))"
)


def _service_health() -> list[Panel]:
    return [
        Panel(
            "Requests per second",
            (Query(_by_variant(M.PREDICTIONS), "{{variant}}"),),
            "reqps",
        ),
        Panel(
            "Latency p50 / p99 (SLO: p99 < 100 ms)",
            (
                Query(_quantile(0.5), "p50 {{variant}}"),
                Query(_quantile(0.99), "p99 {{variant}}"),
            ),
            "s",
        ),
        Panel("Error rate", (Query(_ERROR_RATIO, "{{variant}}"),), "percentunit"),
        Panel(
            "Errors by code",
            (Query(f"sum by (variant, code) (rate({M.ERRORS}[{RATE}]))", "{{variant}} {{code}}"),),
            "reqps",
        ),
        Panel(
            "Requests within 100 ms (last 24 h, target 99%)",
            (Query(_SLO_SHARE, instant=True),),
            "percentunit",
            "stat",
            8,
        ),
        Panel(
            "Variants without a servable model",
            (Query(f"min by (variant) ({M.VARIANT_AVAILABLE}) == 0", "{{variant}}"),),
            "short",
            width=8,
            description="A policy variant whose alias does not resolve is skipped (0).",
        ),
        Panel(
            "Prediction log records shipped / dropped",
            (Query(f"sum by (outcome) (rate({M.LOG_RECORDS}[{RATE}]))", "{{outcome}}"),),
            "ops",
            width=8,
        ),
        Panel(
            "Online feature lookups without a value",
            (
                Query(
                    f"sum by (feature_view) (rate({M.FEATURES_MISSING}[{RATE}]))",
                    "{{feature_view}}",
                ),
            ),
            "ops",
            width=8,
        ),
        Panel(
            "Feature freshness",
            (
                Query(
                    f"time() - max by (feature_view) ({M.MATERIALIZED_UNTIL})", "{{feature_view}}"
                ),
            ),
            "s",
            width=8,
            description="Time since the end of the last materialization window (alert: > 2 h).",
        ),
    ]


def _quality_and_drift() -> list[Panel]:
    return [
        Panel(
            "Drift share",
            (Query(f"max({M.DRIFT_SHARE})", instant=True),),
            "percentunit",
            "stat",
            6,
        ),
        Panel(
            "Dataset drift detected",
            (Query(f"max({M.DRIFT_DETECTED})", instant=True),),
            "bool_yes_no",
            "stat",
            6,
        ),
        Panel(
            "Time since the monitor last ran",
            (Query(f"time() - max({M.MONITOR_LAST_RUN})", instant=True),),
            "s",
            "stat",
            6,
        ),
        Panel(
            "Prediction drift p-value",
            (Query(f"max({M.PREDICTION_DRIFT_PVALUE})", instant=True),),
            "none",
            "stat",
            6,
        ),
        Panel(
            "Drift share over time",
            (Query(f"max({M.DRIFT_SHARE})", "drift share"),),
            "percentunit",
        ),
        Panel(
            "Per-feature drift p-value",
            (Query(M.FEATURE_DRIFT_PVALUE, "{{feature}}"),),
            "none",
            description="Low p-value = the feature's live distribution differs from reference.",
        ),
        Panel(
            "Model quality (labelled recent traffic)",
            (Query(M.MODEL_QUALITY, "{{metric}}"),),
            "none",
        ),
        Panel(
            "Prediction score distribution",
            (Query(f"sum by (le) (increase({M.SCORE_BUCKET}[{RATE}]))", "{{le}}", "heatmap"),),
            "short",
            "heatmap",
        ),
    ]


def _ab_experiment() -> list[Panel]:
    total = f"sum(rate({M.PREDICTIONS}[{RATE}]))"
    return [
        Panel(
            "Traffic share per variant",
            (
                Query(
                    f"{_by_variant(M.PREDICTIONS)} / ignoring(variant) group_left {total}",
                    "{{variant}}",
                ),
            ),
            "percentunit",
        ),
        Panel(
            "Predictions per variant and model version",
            (
                Query(
                    f"sum by (variant, model_version) (rate({M.PREDICTIONS}[{RATE}]))",
                    "{{variant}} v{{model_version}}",
                ),
            ),
            "reqps",
        ),
        Panel(
            "Shadow predictions by outcome",
            (
                Query(
                    f"sum by (variant, outcome) (rate({M.SHADOW}[{RATE}]))",
                    "{{variant}} {{outcome}}",
                ),
            ),
            "ops",
        ),
        Panel(
            "Mean predicted score per variant",
            (Query(f"{_by_variant(M.SCORE_SUM)} / {_by_variant(M.SCORE_COUNT)}", "{{variant}}"),),
            "percentunit",
        ),
        Panel("p99 latency per variant", (Query(_quantile(0.99), "{{variant}}"),), "s"),
        Panel("Error rate per variant", (Query(_ERROR_RATIO, "{{variant}}"),), "percentunit"),
        Panel(
            "Model version per variant",
            (
                Query(
                    f"max by (variant, model_name, model_version) ({M.MODEL_INFO})",
                    "",
                    "table",
                    True,
                ),
            ),
            "none",
            "table",
            24,
        ),
    ]


def _pipeline_runs(namespace: str) -> list[Panel]:
    return [
        Panel(
            "Pipeline runs by status (24 h)",
            (
                Query(
                    f"sum by (pipeline, status) (increase({M.PIPELINE_RUNS}[1d]))",
                    "{{pipeline}} {{status}}",
                ),
            ),
            "short",
        ),
        Panel(
            "Time since last successful run",
            (Query(f"time() - {M.PIPELINE_LAST_SUCCESS}", "{{pipeline}}"),),
            "s",
            description="Alert MlopsPipelineRunOverdue fires above 26 h.",
        ),
        Panel(
            "Promotion decisions (24 h)",
            (
                Query(
                    f"sum by (decision) (increase({M.PROMOTIONS}[1d]))",
                    "{{decision}}",
                    instant=True,
                ),
            ),
            "short",
            "stat",
        ),
        Panel(
            "Failed Jobs",
            (
                Query(
                    f'sum by (job_name) ({M.KUBE_JOB_FAILED}{{namespace="{namespace}"}})',
                    "{{job_name}}",
                ),
            ),
            "short",
        ),
    ]


def _target(query: Query, ref_id: str) -> prometheus.Dataquery:
    q = (
        prometheus.Dataquery()
        .expr(query.expr)
        .ref_id(ref_id)
        .legend_format(query.legend or "__auto")
        .format(PromQueryFormat(query.format))
    )
    return q.instant() if query.instant else q.range()


PanelBuilder = timeseries.Panel | stat.Panel | heatmap.Panel | table.Panel
_BUILDERS: dict[str, type[PanelBuilder]] = {
    "timeseries": timeseries.Panel,
    "stat": stat.Panel,
    "heatmap": heatmap.Panel,
    "table": table.Panel,
}


def _panel(spec: Panel) -> PanelBuilder:
    builder = (
        _BUILDERS[spec.kind]()
        .title(spec.title)
        .datasource(DATASOURCE)
        .unit(spec.unit)
        .span(spec.width)
        .height(4 if spec.kind == "stat" else 8)
    )
    if spec.description:
        builder = builder.description(spec.description)
    for i, query in enumerate(spec.queries):
        builder = builder.with_target(_target(query, chr(ord("A") + i)))
    return builder


def _dashboard(uid: str, title: str, description: str, panels: list[Panel]) -> dict:
    board = (
        dashboard.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .refresh(REFRESH)
        .time("now-6h", "now")
        .timezone("browser")
        .readonly()
        .with_variable(
            dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus")
        )
    )
    for spec in panels:
        board = board.with_panel(_panel(spec))
    # Round-trip through the SDK's encoder: plain JSON, exactly what Grafana reads.
    return _drop_nulls(json.loads(json.dumps(board.build(), cls=JSONEncoder)))


def _drop_nulls(value):
    """Remove ``null`` fields: Grafana fills in defaults for missing ones, not for nulls (the SDK
    emits ``"options": null`` for panels without options)."""
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def dashboards(namespace: str = "mlops") -> dict[str, dict]:
    """Dashboard file name (``<uid>.json``) -> Grafana dashboard JSON model.

    Args:
        namespace: where the platform's Jobs run (the failed-Jobs panel shows only these).
    """
    specs = [
        (
            "mlops-service-health",
            "MLOps / Service health",
            "Traffic, latency against the 100 ms p99 SLO, errors and feature freshness.",
            _service_health(),
        ),
        (
            "mlops-model-quality-drift",
            "MLOps / Model quality and drift",
            "Drift per feature and for the dataset, prediction drift, model quality.",
            _quality_and_drift(),
        ),
        (
            "mlops-ab-experiment",
            "MLOps / A/B experiment",
            "Traffic split, shadow predictions and model versions per variant.",
            _ab_experiment(),
        ),
        (
            "mlops-pipeline-runs",
            "MLOps / Pipeline runs",
            "Retraining runs, last success, promotion decisions and failed Jobs.",
            _pipeline_runs(namespace),
        ),
    ]
    return {
        f"{uid}.json": _dashboard(uid, title, desc, panels) for uid, title, desc, panels in specs
    }
