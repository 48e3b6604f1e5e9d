"""Environment variables a pod is given and the data plane reads.

``ml.settings.Settings`` (prefix ``MLOPS_``) reads the ``MLOPS_*`` ones; the others are read by
third-party code inside our processes (Feast, MLflow, boto3). A component sets a variable only
through these constants; ``tests/contract`` fails on a variable a pod gets that nothing reads.
"""

from __future__ import annotations

PREFIX = "MLOPS_"

# Services
MLFLOW_TRACKING_URI = "MLOPS_MLFLOW_TRACKING_URI"
MLFLOW_USERNAME = "MLFLOW_TRACKING_USERNAME"  # read by the MLflow client
MLFLOW_PASSWORD = "MLFLOW_TRACKING_PASSWORD"  # read by the MLflow client
PUSHGATEWAY_URL = "MLOPS_PUSHGATEWAY_URL"
FEAST_YAML = "FEAST_FS_YAML_FILE_PATH"  # read by the Feast CLI and ml.features.store
FEATURE_REPO = "MLOPS_FEATURE_REPO"

# Object store (boto3 reads the AWS_* ones; buckets are ours)
AWS_ENDPOINT_URL_S3 = "AWS_ENDPOINT_URL_S3"
AWS_REGION = "AWS_REGION"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
AWS_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
AWS_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"


def bucket(role: str) -> str:
    """The variable naming the bucket of ``role`` (artifacts, features, reports)."""
    return f"MLOPS_{role.upper()}_BUCKET"


# Workload identity and serving
MODEL_NAME = "MLOPS_MODEL_NAME"
TRAFFIC_POLICY = "MLOPS_TRAFFIC_POLICY"
PREDICTION_LOG = "MLOPS_PREDICTION_LOG"
POD_NAME = "MLOPS_POD_NAME"  # from the downward API; names the pod's prediction-log batches
BUILD_DIR = "MLOPS_BUILD_DIR"
