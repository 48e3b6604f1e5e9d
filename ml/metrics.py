"""Prometheus metrics exported by the first-party services, defined once.

The serving API, the feature freshness probe, the drift monitor and the pipeline all import
their metrics from here, and the dashboard and alert-rule tests read :data:`EXPORTED` to check
that every query refers to a metric that something really exports. Long-running services are
scraped (ServiceMonitor); batch jobs (drift monitor, retraining) push to a Pushgateway.

Nothing is registered in the global registry at import time: each process calls
:func:`registry` once and gets its own :class:`CollectorRegistry` with every metric on it.
"""

from __future__ import annotations

from functools import cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from contract.metrics import EXPORTED, LATENCY_BUCKETS, MetricSpec, exported_series_names

__all__ = ["EXPORTED", "LATENCY_BUCKETS", "MetricSpec", "exported_series_names", "registry"]

_KINDS = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}


@cache
def registry() -> tuple[CollectorRegistry, dict[str, Counter | Gauge | Histogram]]:
    """This process's registry and its metrics by name (created once, on first use)."""
    reg = CollectorRegistry()
    metrics: dict[str, Counter | Gauge | Histogram] = {}
    for spec in EXPORTED:
        kwargs: dict = {"registry": reg, "labelnames": spec.labels}
        if spec.kind == "histogram":
            kwargs["buckets"] = (
                LATENCY_BUCKETS if "latency" in spec.name else tuple(i / 10 for i in range(1, 11))
            )
        metrics[spec.name] = _KINDS[spec.kind](spec.name, spec.help, **kwargs)
    return reg, metrics
