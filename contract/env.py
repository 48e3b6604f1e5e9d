"""Environment variables a pod is given and the data plane reads.

``ml.settings.Settings`` (prefix ``MLOPS_``) reads the ``MLOPS_*`` ones; the others are read by
third-party code inside our processes (Feast, MLflow, boto3). A component sets a variable only
through these constants; ``tests/contract`` fails on a variable a pod gets that nothing reads.
"""

from __future__ import annotations

PREFIX = "MLOPS_"

# Services
MLFLOW_TRACKING_URI = "MLOPS_MLFLOW_TRACKING_URI"
# The MLflow client's credentials reach pods as ~/.mlflow/credentials (contract.paths), not as
# MLFLOW_TRACKING_USERNAME/PASSWORD; processes outside a pod may still set those.
PUSHGATEWAY_URL = "MLOPS_PUSHGATEWAY_URL"
FEAST_YAML = "FEAST_FS_YAML_FILE_PATH"  # read by the Feast CLI and ml.features.store
FEATURE_REPO = "MLOPS_FEATURE_REPO"

# Object store (boto3 reads the AWS_* ones; buckets are ours)
AWS_ENDPOINT_URL_S3 = "AWS_ENDPOINT_URL_S3"
AWS_REGION = "AWS_REGION"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"  # outside pods only: pods get a credentials file
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AWS_SHARED_CREDENTIALS_FILE = "AWS_SHARED_CREDENTIALS_FILE"  # read by boto3 and pyarrow's S3


def bucket(role: str) -> str:
    """The variable naming the bucket of ``role`` (artifacts, features, reports)."""
    return f"MLOPS_{role.upper()}_BUCKET"


# Workload identity and serving
MODEL_NAME = "MLOPS_MODEL_NAME"
TRAFFIC_POLICY = "MLOPS_TRAFFIC_POLICY"
PREDICTION_LOG = "MLOPS_PREDICTION_LOG"
POD_NAME = "MLOPS_POD_NAME"  # from the downward API; names the pod's prediction-log batches
BUILD_DIR = "MLOPS_BUILD_DIR"
