"""Paths inside the two first-party images and the pods that run them.

The images are built for these (``infra/images/*.Dockerfile``); components mount configuration
at them; the data plane finds it there through the variables in :mod:`contract.env`.
"""

from __future__ import annotations

FEATURE_REPO_DIR = "/app/feature_repo"
"""The Feast repository baked into the ML image."""

FEAST_CONFIG_DIR = "/etc/feast"
FEAST_YAML_FILE = "feature_store.yaml"
FEAST_YAML_PATH = f"{FEAST_CONFIG_DIR}/{FEAST_YAML_FILE}"
"""The cluster's feature_store.yaml (a Secret, mounted as a directory: no subPath)."""

POLICY_DIR = "/etc/mlops/traffic"
POLICY_FILE = "traffic-policy.json"
POLICY_PATH = f"{POLICY_DIR}/{POLICY_FILE}"
"""The serving traffic policy (a ConfigMap mounted as a directory, so updates reach the pod)."""

MLFLOW_AUTH_DIR = "/etc/mlflow"
MLFLOW_AUTH_FILE = "basic_auth.ini"

TMP = "/tmp"
"""The only writable path of every first-party container (an emptyDir); also HOME."""

CREDENTIALS_FILE = "credentials"
AWS_CREDENTIALS_DIR = "/var/run/secrets/mlops/aws"
AWS_CREDENTIALS_PATH = f"{AWS_CREDENTIALS_DIR}/{CREDENTIALS_FILE}"
"""Static S3 keys in the AWS shared-credentials format (``AWS_SHARED_CREDENTIALS_FILE``)."""
MLFLOW_USERS_DIR = "/var/run/secrets/mlops/mlflow-users"
MLFLOW_USERS_FILE = "users.json"
MLFLOW_USERS_PATH = f"{MLFLOW_USERS_DIR}/{MLFLOW_USERS_FILE}"
"""The workloads' MLflow users and passwords, for the Job that creates them (admin only)."""
MLFLOW_CREDENTIALS_DIR = f"{TMP}/.mlflow"
"""``~/.mlflow``: the MLflow client reads ``~/.mlflow/credentials`` itself (HOME is /tmp)."""
BUILD_DIR = "/tmp/mlops"
"""MLOPS_BUILD_DIR in the images: local outputs, bounded by the emptyDir's size."""
