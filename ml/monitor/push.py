"""The monitor's Prometheus gauges, and pushing them to a Pushgateway.

The drift monitor is a batch job (a Kubernetes CronJob), so Prometheus cannot scrape it: it sets
the gauges defined in :mod:`ml.metrics` and pushes them under the job name
:data:`PUSH_JOB`, where the alert rules and dashboards read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from ml.errors import ServiceUnavailable
from ml.monitor.drift import DriftResult
from ml.monitor.quality import QualityMetrics

if TYPE_CHECKING:
    from prometheus_client import Gauge

PUSH_JOB = "mlops-drift-monitor"


def set_gauges(result: DriftResult, quality: QualityMetrics | None = None) -> None:
    """Set the monitor gauges of this process's registry from one run.

    Args:
        result: The drift verdicts.
        quality: Model quality on the labelled part of the window, if any.
    """
    gauge = _gauges()
    gauge("mlops_drift_share").set(result.drift_share)
    gauge("mlops_drift_detected").set(int(result.drift_detected))
    for feature, p_value in result.feature_pvalues.items():
        gauge("mlops_feature_drift_pvalue").labels(feature=feature).set(p_value)
    if result.prediction is not None:
        gauge("mlops_prediction_drift_pvalue").set(result.prediction.p_value)
    if quality is not None:
        for name in ("roc_auc", "brier", "precision", "recall", "default_rate"):
            gauge("mlops_model_quality").labels(metric=name).set(getattr(quality, name))
    gauge("mlops_monitor_last_run_timestamp_seconds").set(time.time())


def _gauges() -> Callable[[str], Gauge]:
    from ml.metrics import registry

    _, metrics = registry()
    return lambda name: cast("Gauge", metrics[name])


def push(gateway: str, job: str = PUSH_JOB, timeout: float = 5.0) -> None:
    """Push this process's registry to the Pushgateway at ``gateway``.

    Raises:
        ServiceUnavailable: The gateway cannot be reached or refused the push.
    """
    from prometheus_client import push_to_gateway

    from ml.metrics import registry

    reg, _ = registry()
    try:
        push_to_gateway(gateway, job=job, registry=reg, timeout=timeout)
    except OSError as error:  # URLError, connection refused, timeouts, HTTP errors
        raise ServiceUnavailable(
            f"could not push metrics to the Pushgateway at {gateway} ({_short(error)})",
            "check --push-gateway (host:port or URL) and that the Pushgateway is running",
        ) from None


def push_heartbeat(gateway: str, job: str = PUSH_JOB, timeout: float = 5.0) -> None:
    """Record a run without a verdict (not enough traffic): only the last-run gauge.

    Added to the job's group (HTTP POST), so the previous verdict's gauges stay as they were; a
    full push would replace them, and unset gauges would read 0 ("no drift").
    """
    from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

    from contract.metrics import EXPORTED

    (spec,) = [s for s in EXPORTED if s.name == "mlops_monitor_last_run_timestamp_seconds"]
    reg = CollectorRegistry()
    Gauge(spec.name, spec.help, registry=reg).set(time.time())
    try:
        pushadd_to_gateway(gateway, job=job, registry=reg, timeout=timeout)
    except OSError as error:
        raise ServiceUnavailable(
            f"could not push metrics to the Pushgateway at {gateway} ({_short(error)})",
            "check --push-gateway (host:port or URL) and that the Pushgateway is running",
        ) from None


def _short(error: Exception) -> str:
    return str(getattr(error, "reason", None) or error).splitlines()[0][:120]
