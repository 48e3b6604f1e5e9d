"""Assemble a :class:`~ml.serve.predictor.Predictor` from settings, a policy and the registry.

Used by the BentoML service in each worker process and directly by tests. Serving options are
environment variables like every other setting, so the embedded server and a Kubernetes pod
differ only in their environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ml.serve.models import LoadedModel, load_model
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


class ServingOptions(BaseSettings):
    """How the server runs (env ``MLOPS_*``); defaults chosen from profiles (docs/serving.md)."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", frozen=True, extra="ignore")

    traffic_policy: Path | None = Field(None, description="Policy file (YAML/JSON).")
    prediction_log: Path | None = Field(
        None, description="JSONL prediction log (default: <build>/serving/predictions.jsonl)."
    )
    serving_workers: int = Field(2, ge=1, le=64, description="Server worker processes.")
    serving_threads: int = Field(4, ge=1, le=256, description="Threads per worker.")
    policy_poll_s: float = Field(1.0, gt=0, description="How often the policy file is checked.")


def prediction_log_path(settings: Settings, options: ServingOptions | None = None) -> Path:
    options = options or ServingOptions()
    return options.prediction_log or settings.build / "serving" / "predictions.jsonl"


def load_models(
    policy: TrafficPolicy,
    model_name: str,
    features: list[str],
    loaded: dict[str, LoadedModel] | None = None,
    shadows: bool = False,
) -> dict[str, LoadedModel]:
    """Load the live variants' (or the shadows') models, reusing already-loaded versions."""
    loaded = loaded or {}
    by_version = {m.version: m for m in loaded.values()}
    specs = (
        {s.name: s.model for s in policy.shadows}
        if shadows
        else {n: policy.variants[n].model for n in policy.live_variants()}
    )
    models = {}
    for name, ref in specs.items():
        from ml.serve.models import ensure_servable, resolve_version

        version = resolve_version(model_name, ref)
        if str(version.version) in by_version:
            ensure_servable(version)  # governance may have withdrawn it since
            models[name] = by_version[str(version.version)]
        else:
            models[name] = load_model(model_name, ref, features)
            by_version[models[name].version] = models[name]
    return models


def build_predictor(
    settings: Settings,
    policy: TrafficPolicy | None = None,
    log_path: Path | None = None,
    store=None,
    metrics: bool = True,
    watch: bool = False,
):
    """A ready predictor: policy, loaded models, Feast reader, prediction log, shadows.

    Args:
        settings: Where the feature repo is, the model name and feature service.
        policy: The traffic policy (default: read from ``MLOPS_TRAFFIC_POLICY`` / traffic.yaml).
        log_path: Prediction log file (default: :func:`prediction_log_path`).
        store: An open Feast ``FeatureStore`` (default: open ``settings.feature_repo_dir``).
        metrics: Export Prometheus metrics from :func:`ml.metrics.registry`.
        watch: Poll the policy file and apply changes (the server does; tests usually don't).
    """
    from ml.config import load_pipeline_config
    from ml.features.store import model_features, open_store
    from ml.metrics import registry
    from ml.serve.features import OnlineFeatureReader
    from ml.serve.prediction_log import PredictionLog
    from ml.serve.predictor import Predictor
    from ml.serve.shadow import ShadowRunner

    options = ServingOptions()
    path = options.traffic_policy or policy_path()
    policy = policy or load_policy(path)
    model_name = policy.model_name or settings.model_name
    features = model_features(settings.feature_service)
    store = store or open_store(settings.feature_repo_dir)
    reader = OnlineFeatureReader(store, settings.feature_service)
    threshold = load_pipeline_config().decision_threshold
    log = PredictionLog(log_path or prediction_log_path(settings, options))
    metric_map = registry()[1] if metrics else None
    live = load_models(policy, model_name, features)
    shadow_models = load_models(policy, model_name, features, live, shadows=True)
    runner = ShadowRunner(shadow_models, policy, threshold, features, log, metric_map)
    predictor = Predictor(policy, live, reader, threshold, log, runner, metric_map)
    if watch:

        def reload(new: TrafficPolicy, current: dict[str, LoadedModel]):
            runner.models = load_models(new, model_name, features, current, shadows=True)
            return load_models(new, model_name, features, current)

        predictor.watch(path, reload, options.policy_poll_s)
    return predictor
