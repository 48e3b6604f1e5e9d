"""Assemble a :class:`~ml.serve.predictor.Predictor` from settings, a policy and the registry.

Used by the BentoML service in each worker process and directly by tests. Serving options are
fields of :class:`~ml.settings.Settings` like every other setting, so the embedded server and
a Kubernetes pod differ only in their environment.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ml.serve.models import LoadedModel, ensure_servable, load_version, resolve_version
from ml.serve.traffic import TrafficPolicy, load_policy, policy_path
from ml.settings import Settings

# One BLAS/OpenMP thread per worker: requests are single rows, and with 2 cores, N workers x
# N BLAS threads only oversubscribe the CPU (measured: docs/serving.md).
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}


def load_models(
    policy: TrafficPolicy,
    model_name: str,
    features: list[str],
    loaded: dict[str, LoadedModel] | None = None,
    shadows: bool = False,
) -> tuple[dict[str, LoadedModel], dict[str, str]]:
    """Load the live variants' (or the shadows') models, reusing already-loaded versions.

    Every ref is resolved again (an alias may have moved), and only versions governance allows
    are served. A variant that cannot be served (alias unset, not approved, registry down) is
    skipped: the router gives its share to the others.

    Returns:
        The loaded models by variant, and the skipped variants with the reason.
    """
    by_version = {m.version: m for m in (loaded or {}).values()}
    specs = (
        {s.name: s.model for s in policy.shadows}
        if shadows
        else {n: policy.variants[n].model for n in policy.live_variants()}
    )
    models: dict[str, LoadedModel] = {}
    skipped: dict[str, str] = {}
    for name, ref in specs.items():
        try:
            version = resolve_version(model_name, ref)
            ensure_servable(version)  # governance may have withdrawn a loaded version since
            model = by_version.get(str(version.version)) or load_version(version, features)
        except Exception as error:  # a variant that fails is skipped, not fatal
            skipped[name] = str(error).splitlines()[0] if str(error) else type(error).__name__
            continue
        models[name] = by_version[model.version] = model
    return models, skipped


SERVING_MLFLOW_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "15"}


def configure_mlflow(settings: Settings) -> None:
    """Point this process's MLflow client at ``MLOPS_MLFLOW_TRACKING_URI`` when it is set.

    Credentials (``MLFLOW_TRACKING_USERNAME``/``PASSWORD``) are read by the client itself.
    The client's defaults (7 retries with exponential backoff, 120 s timeout) would hold the
    alias poller for minutes while the registry is down; it polls again in seconds anyway,
    so each call fails fast unless the deployment says otherwise.
    """
    for variable, value in SERVING_MLFLOW_HTTP.items():
        os.environ.setdefault(variable, value)
    if settings.mlflow_tracking_uri:
        import mlflow

        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        mlflow.set_registry_uri(settings.mlflow_tracking_uri)


def open_feature_store(settings: Settings):
    """The Feast store (the cluster's mounted config in a pod: see ``config_file``)."""
    from ml.features.store import open_store

    return open_store(settings.feature_repo_dir)


def open_prediction_log(settings: Settings, metrics: dict | None):
    """Ship batches to the reports bucket when one is configured, else append to a local file."""
    from ml import objectstore
    from ml.serve.prediction_log import PredictionLog, ShippingPredictionLog

    if not objectstore.configured("reports"):
        return PredictionLog(settings.prediction_log_path)
    return ShippingPredictionLog(
        objectstore.Bucket.for_role("reports"),
        settings.build / "serving" / "spool",
        pod=(settings.pod_name or "").strip() or socket.gethostname(),
        batch_records=settings.log_batch_records,
        batch_s=settings.log_batch_s,
        max_spool_bytes=settings.log_spool_bytes,
        metrics=metrics,
    )


def build_predictor(
    settings: Settings,
    policy: TrafficPolicy | None = None,
    log_path: Path | None = None,
    store=None,
    metrics: bool = True,
    watch: bool = False,
):
    """A predictor: policy, loaded models, Feast reader, prediction log, shadows.

    It may start with no servable live variant (a fresh platform has no champion): it then
    reports not ready until one appears. With ``watch`` a background thread follows the policy
    file and the registry aliases and swaps models without a restart.

    Args:
        settings: Where the feature repo is, the model name and feature service.
        policy: The traffic policy (default: read from ``MLOPS_TRAFFIC_POLICY`` / traffic.yaml).
        log_path: Local prediction log file (default: the object store when a reports bucket
            is configured, else ``settings.prediction_log_path``).
        store: An open Feast ``FeatureStore`` (default: :func:`open_feature_store`).
        metrics: Export Prometheus metrics from :func:`ml.metrics.registry`.
        watch: Follow the policy file and the aliases (the server does; tests usually don't).
    """
    from ml.config import load_pipeline_config
    from ml.features.store import model_features
    from ml.metrics import registry
    from ml.serve.features import OnlineFeatureReader
    from ml.serve.prediction_log import PredictionLog
    from ml.serve.predictor import Predictor
    from ml.serve.shadow import ShadowRunner

    configure_mlflow(settings)
    path = policy_path()
    policy = policy or load_policy(path)
    model_name = policy.model_name or settings.model_name
    features = model_features(settings.feature_service)
    metric_map = registry()[1] if metrics else None
    reader = OnlineFeatureReader(
        store or open_feature_store(settings), settings.feature_service, metric_map
    )
    threshold = load_pipeline_config().decision_threshold
    log = PredictionLog(log_path) if log_path else open_prediction_log(settings, metric_map)

    def loader(new: TrafficPolicy, current: dict[str, LoadedModel]):
        live, skipped = load_models(new, model_name, features, current)
        shadow_models, shadow_skipped = load_models(new, model_name, features, live, shadows=True)
        return live, shadow_models, {**skipped, **shadow_skipped}

    live, shadow_models, skipped = loader(policy, {})
    runner = ShadowRunner(shadow_models, policy, threshold, features, log, metric_map)
    predictor = Predictor(policy, live, reader, threshold, log, runner, metric_map)
    predictor.report_skipped(skipped)
    if watch:
        predictor.watch(path, loader, settings.policy_poll_s, settings.model_poll_s)
    return predictor
