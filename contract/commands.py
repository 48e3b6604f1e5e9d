"""The commands first-party containers run: one definition for the Jobs and for the demo.

Each lifecycle step is one command whose inputs come from settings (environment), so a Job in
the cluster and the embedded demo run the same code path. ``tests/contract`` parses every
command of the rendered manifests with the real ``mlops``/``feast``/``mlflow`` CLI.
"""

from __future__ import annotations

from contract.paths import FEAST_YAML_PATH, FEATURE_REPO_DIR, MLFLOW_USERS_PATH

MLOPS = ("mlops",)


def feast(repo_dir: str, feature_store_yaml: str) -> tuple[str, ...]:
    """Feast's own CLI on a repository and a configuration kept apart from it."""
    return ("feast", "--chdir", repo_dir, "--feature-store-yaml", feature_store_yaml)


# In a pod: the image's repository and the mounted cluster configuration.
FEAST = feast(FEATURE_REPO_DIR, FEAST_YAML_PATH)
FEAST_APPLY = (*FEAST, "apply")

# Lifecycle steps (mlops <group> <command>), in the order of the loop.
INGEST = ("mlops", "data", "ingest")
MATERIALIZE = ("mlops", "features", "materialize")
TRAIN = ("mlops", "pipeline", "train")
DRIFT = ("mlops", "monitor", "drift")
RETRAIN = ("mlops", "pipeline", "retrain")
PUBLISH_SITE = ("mlops", "docs", "publish")
ARTIFACT_GC = ("mlops", "experiments", "gc")
# The admin creates the workloads' own MLflow users (each workload authenticates as itself).
MLFLOW_USERS = ("mlops", "governance", "users", "--file", MLFLOW_USERS_PATH)

# Long-running servers.
SERVE = ("bentoml", "serve", "ml.serve.service:CreditRiskService", "--host", "0.0.0.0")
MLFLOW_SERVER = ("mlflow", "server")
MLFLOW_APP = "mlops-governance"
"""``mlflow server --app-name``: basic auth plus the governance write rule (pyproject's
``mlflow.app`` entry point, :mod:`ml.governance.server_app`)."""
