"""One typed settings object: where every workload finds its files and services.

Values come from environment variables prefixed ``MLOPS_`` (e.g. ``MLOPS_SEED=7``,
``MLOPS_MLFLOW_TRACKING_URI=http://mlflow:5000``), so the same code runs in tests, embedded on a
laptop and in a Kubernetes pod, which only differ in their environment. Nothing is created at
import time; call :func:`get_settings` and then :meth:`Settings.ensure_dirs` where needed.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Third-party telemetry must stay off: the machines this runs on have no outbound network, and
# users of a blueprint should not phone home by default.
_TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    "BENTOML_DO_NOT_TRACK": "true",
    "DO_NOT_TRACK": "1",
    "FEAST_USAGE": "False",
    "FEAST_TELEMETRY": "False",
    "GIT_PYTHON_REFRESH": "quiet",
    # Progress output is ours (ml.progress); MLflow's per-run URLs and INFO lines drown it.
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
}


def _project_root() -> Path:
    """The repository root: the folder holding pyproject.toml above this file, else the cwd."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


class Settings(BaseSettings):
    """Everything the data plane needs to know about its environment."""

    model_config = SettingsConfigDict(env_prefix="MLOPS_", frozen=True, extra="ignore")

    root: Path = Field(default_factory=_project_root, description="Repository root.")
    build_dir: Path | None = Field(None, description="Where outputs go (default: <root>/build).")
    seed: int = Field(42, ge=0, description="Seed for the dataset and every model.")
    n_customers: int = Field(4000, ge=100, le=1_000_000, description="Customers in the dataset.")
    history_days: int = Field(270, ge=60, le=3650, description="Days of event history.")
    mlflow_tracking_uri: str | None = Field(
        None, description="MLflow server; unset means the demo starts a local one."
    )
    mlflow_port: int = Field(5055, ge=1024, le=65535, description="Port of the embedded MLflow.")
    serving_port: int = Field(3055, ge=1024, le=65535, description="Port of the embedded API.")
    feature_server_port: int = Field(
        6566, ge=1024, le=65535, description="Port of `mlops up`'s Feast feature server."
    )
    feast_ui_port: int = Field(8888, ge=1024, le=65535, description="Port of the Feast UI.")
    prometheus_port: int = Field(9090, ge=1024, le=65535, description="Port of Prometheus.")
    pushgateway_port: int = Field(9091, ge=1024, le=65535, description="Port of the Pushgateway.")
    # Object store: one bucket per role (contract.objectstore.BUCKETS); unset means embedded
    # local files. The endpoint and credentials are boto3's own AWS_* variables.
    artifacts_bucket: str | None = Field(None, description="MLflow's artifact bucket.")
    features_bucket: str | None = Field(
        None, description="Landing, processed and offline feature data."
    )
    reports_bucket: str | None = Field(
        None, description="Prediction logs, monitoring reports, the audit log."
    )
    pushgateway_url: str | None = Field(
        None, description="Where batch Jobs push their metrics; unset means they don't."
    )
    model_name: str = Field("credit-risk", min_length=1, description="Registered model name.")
    feature_service: str = Field("credit_v1", description="Feast feature service the model uses.")
    feature_repo: Path | None = Field(
        None, description="Feast repo folder (default: the embedded one under build/demo)."
    )
    governance_config: Path | None = Field(
        None, description="Governance roles and gates (default: the packaged governance.yaml)."
    )
    require_approval: bool = Field(
        True, description="Serve only versions governance approved (false: any registered one)."
    )
    # Serving: defaults chosen from profiles (docs/serving.md).
    serving_workers: int = Field(2, ge=1, le=64, description="Worker processes of the API.")
    serving_threads: int = Field(4, ge=1, le=256, description="Threads per API worker.")
    serving_max_batch: int = Field(
        64, ge=1, le=4096, description="Requests scored together per event-loop turn (1: off)."
    )
    serving_compile_models: bool = Field(
        True, description="Score linear pipelines with the checked numpy form (false: sklearn)."
    )
    serving_gc_threshold: int = Field(
        50_000,
        ge=1,
        description="Allocations between young-generation collections (Python's default: 700).",
    )
    serving_profile_dir: Path | None = Field(
        None, description="Record where latency goes (ml/serve/profiling.py); unset: off."
    )
    traffic_policy: Path | None = Field(
        None, description="Traffic policy file (default: the packaged traffic.yaml)."
    )
    policy_poll_s: float = Field(1.0, gt=0, description="How often the policy file is checked.")
    model_poll_s: float = Field(
        5.0, gt=0, description="How often registry aliases are re-resolved (model swaps)."
    )
    prediction_log: Path | None = Field(
        None, description="JSONL prediction log (default: <build>/serving/predictions.jsonl)."
    )
    log_batch_records: int = Field(
        5000, ge=1, description="Prediction-log records per shipped batch (object store)."
    )
    log_batch_s: float = Field(30.0, gt=0, description="Longest a batch waits to be shipped.")
    log_spool_bytes: int = Field(
        128 * 2**20, ge=2**20, description="Cap of unshipped prediction-log bytes on local disk."
    )
    pod_name: str | None = Field(
        None, description="The pod (downward API); names its prediction-log batches."
    )

    @field_validator("model_name")
    @classmethod
    def _model_name_is_simple(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("use letters, digits, '-' and '_' only")
        return value

    @property
    def build(self) -> Path:
        return (self.build_dir or self.root / "build").resolve()

    @property
    def demo_dir(self) -> Path:
        return self.build / "demo"

    @property
    def data_dir(self) -> Path:
        return self.demo_dir / "data"

    @property
    def feature_repo_dir(self) -> Path:
        """Feast repo folder: ``MLOPS_FEATURE_REPO`` in pods, else the embedded one."""
        return self.feature_repo or self.demo_dir / "feature_repo"

    @property
    def mlflow_dir(self) -> Path:
        return self.demo_dir / "mlflow"

    @property
    def bench_dir(self) -> Path:
        return self.build / "bench"

    @property
    def audit_log(self) -> Path:
        """The append-only, hash-chained audit log of the embedded mode."""
        return self.build / "audit" / "audit.jsonl"

    def model_card_dir(self, version: str | int, model_name: str | None = None) -> Path:
        """One folder per registered version: no card ever overwrites another's."""
        return self.build / "model_cards" / (model_name or self.model_name) / f"v{version}"

    def bucket(self, role: str) -> str | None:
        """The bucket of ``role`` (``MLOPS_<ROLE>_BUCKET``), or None when unset or blank."""
        return (getattr(self, f"{role}_bucket") or "").strip() or None

    @property
    def prediction_log_path(self) -> Path:
        """The local prediction log (when no reports bucket ships it)."""
        return self.prediction_log or self.build / "serving" / "predictions.jsonl"

    @property
    def lock_file(self) -> Path:
        return self.root / "uv.lock"

    def ensure_dirs(self) -> None:
        for path in (self.demo_dir, self.data_dir, self.feature_repo_dir, self.mlflow_dir):
            path.mkdir(parents=True, exist_ok=True)


def apply_process_defaults() -> None:
    """Set the environment every workload process needs (telemetry off), keeping user values."""
    for key, value in _TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


@cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    from pydantic import ValidationError

    from ml.errors import UserError

    try:
        return Settings()
    except ValidationError as error:
        first = error.errors()[0]
        key = "MLOPS_" + "_".join(str(p) for p in first["loc"]).upper()
        raise UserError(
            f"bad setting {key}: {first['msg']}", f"fix or unset the {key} environment variable"
        ) from None
