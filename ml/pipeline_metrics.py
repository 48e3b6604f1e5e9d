"""The pipeline's Prometheus series, pushed to the Pushgateway after each batch run.

Training, retraining and materialization are Jobs, so Prometheus cannot scrape them: each run
pushes its own small registry (only the series it owns, so it never overwrites another job's
gauges with zeros) under the job :data:`PUSH_JOB` and a grouping key naming the pipeline.
Counters are kept cumulative across runs by starting from what the gateway already holds for
the same group. Without ``MLOPS_PUSHGATEWAY_URL`` (the embedded demo) nothing is pushed.
"""

from __future__ import annotations

import time
import urllib.request

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.parser import text_string_to_metric_families

from contract.metrics import EXPORTED

PUSH_JOB = "mlops-pipeline"
_SPECS = {spec.name: spec for spec in EXPORTED}


def gateway() -> str | None:
    """``MLOPS_PUSHGATEWAY_URL`` (``contract.env.PUSHGATEWAY_URL``), if set."""
    from ml.settings import get_settings

    return (get_settings().pushgateway_url or "").strip() or None


def push_run(pipeline: str, status: str, decision: str | None = None) -> None:
    """Record one run of ``pipeline`` (``succeeded``/``failed``) and its promotion decision."""
    url = gateway()
    if url is None:
        return
    previous = _current_values(url, pipeline)
    runs = {
        (("pipeline", pipeline), ("status", st)): _previous(previous, pipeline, st)
        for st in ("succeeded", "failed", status)
    }
    runs[(("pipeline", pipeline), ("status", status))] += 1
    promotions = {
        labels: value
        for (name, labels), value in previous.items()
        if name == "mlops_model_promotions_total"
    }
    if decision is not None:
        chosen = (("decision", decision),)
        promotions[chosen] = promotions.get(chosen, 0) + 1
    reg = CollectorRegistry()
    reg.register(_Counters({"mlops_pipeline_runs": runs, "mlops_model_promotions": promotions}))
    last = _gauge("mlops_pipeline_last_success_timestamp_seconds", reg)
    key = ("mlops_pipeline_last_success_timestamp_seconds", (("pipeline", pipeline),))
    stamp = time.time() if status == "succeeded" else previous.get(key)
    if stamp is not None:
        last.labels(pipeline=pipeline).set(stamp)
    _push(url, {"pipeline": pipeline}, reg)


def _previous(previous: dict, pipeline: str, status: str) -> float:
    key = ("mlops_pipeline_runs_total", (("pipeline", pipeline), ("status", status)))
    return previous.get(key, 0.0)


class _Counters:
    """Counters with explicit values (the gateway's totals plus this run), no process state."""

    def __init__(self, values: dict[str, dict[tuple, float]]) -> None:
        self.values = values

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        for name, samples in self.values.items():
            spec = _SPECS[name]
            family = CounterMetricFamily(spec.name, spec.help, labels=spec.labels)
            for labels, value in sorted(samples.items()):
                family.add_metric([dict(labels)[label] for label in spec.labels], value)
            yield family


def push_materialized(until: dict[str, float]) -> None:
    """Publish how far each feature view is loaded into the online store (unix seconds)."""
    url = gateway()
    if url is None or not until:
        return
    reg = CollectorRegistry()
    gauge = _gauge("mlops_feature_materialized_until_timestamp_seconds", reg)
    for view, seconds in until.items():
        gauge.labels(feature_view=view).set(seconds)
    _push(url, {"pipeline": "materialize"}, reg)


def _gauge(name: str, reg: CollectorRegistry) -> Gauge:
    spec = _SPECS[name]
    return Gauge(spec.name, spec.help, spec.labels, registry=reg)


def _base(url: str) -> str:
    return url if "://" in url else f"http://{url}"


def _current_values(url: str, pipeline: str) -> dict[tuple[str, tuple], float]:
    """Samples the gateway holds for this job and pipeline (empty if it cannot be read)."""
    try:
        with urllib.request.urlopen(f"{_base(url)}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    values: dict[tuple[str, tuple], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = dict(sample.labels)
            if labels.pop("job", None) != PUSH_JOB or labels.get("pipeline") != pipeline:
                continue
            labels.pop("instance", None)
            if sample.name == "mlops_model_promotions_total":
                labels.pop("pipeline", None)
            values[(sample.name, tuple(sorted(labels.items())))] = sample.value
    return values


def _push(url: str, grouping_key: dict[str, str], reg: CollectorRegistry) -> None:
    from prometheus_client import push_to_gateway

    from ml.errors import ServiceUnavailable

    try:
        push_to_gateway(
            _base(url), job=PUSH_JOB, registry=reg, grouping_key=grouping_key, timeout=5
        )
    except OSError as error:
        first = str(getattr(error, "reason", None) or error).splitlines()[0][:120]
        raise ServiceUnavailable(
            f"could not push pipeline metrics to {url} ({first})",
            "check MLOPS_PUSHGATEWAY_URL and that the Pushgateway is running",
        ) from None
