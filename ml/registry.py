"""The MLflow model registry: versions, the ``champion`` alias, and what it points to.

Aliases (MLflow 3), not stages: ``champion`` is what serving loads, ``challenger`` is what an
experiment compares against it, ``previous-champion`` is what a rollback restores.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS_CHAMPION = "previous-champion"


@dataclass(frozen=True)
class Registered:
    name: str
    version: str
    run_id: str


def register(run_id: str, model_name: str, tags: dict[str, str]) -> Registered:
    """Register the run's model as a new version of ``model_name`` with ``tags``."""
    version = mlflow.register_model(f"runs:/{run_id}/model", model_name, tags=tags)
    return Registered(model_name, str(version.version), run_id)


def alias_version(model_name: str, alias: str) -> ModelVersion | None:
    """The version an alias points to, or None if the model or alias does not exist."""
    try:
        return MlflowClient().get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def promote(model_name: str, version: str) -> str | None:
    """Point ``champion`` at ``version``; keep the old one as ``previous-champion``.

    Returns:
        The version that was champion before, if any.
    """
    client = MlflowClient()
    previous = alias_version(model_name, CHAMPION)
    if previous is not None and previous.version != version:
        client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION, previous.version)
    client.set_registered_model_alias(model_name, CHAMPION, version)
    return previous.version if previous is not None else None


def rollback(model_name: str) -> str:
    """Restore ``previous-champion`` as ``champion``; returns the restored version."""
    previous = alias_version(model_name, PREVIOUS_CHAMPION)
    if previous is None:
        raise LookupError(f"{model_name} has no {PREVIOUS_CHAMPION} to roll back to")
    MlflowClient().set_registered_model_alias(model_name, CHAMPION, previous.version)
    return str(previous.version)


def model_uri(model_name: str, alias: str = CHAMPION) -> str:
    return f"models:/{model_name}@{alias}"
