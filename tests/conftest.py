"""Shared fixtures: a small but real trained platform (data → Feast → MLflow → champion).

``trained_platform`` runs the same pipeline functions as the demo, once per test session, on a
small dataset, with MLflow on a local SQLite store (the real MLflow, without the server
process, to keep the suite fast) and Feast's embedded SQLite online store.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import mlflow
import pandas as pd
import pytest
from feast import FeatureStore

from ml import registry
from ml.config import load_pipeline_config
from ml.data import generate
from ml.features import store as feature_store
from ml.pipeline import (
    Ingested,
    TrainingOutcome,
    fresh_training_set,
    register_winner,
    train_and_gate,
)
from ml.settings import Settings, apply_process_defaults, get_settings

TEST_CUSTOMERS = 1500


@pytest.fixture(autouse=True)
def fresh_settings():
    """Settings are read once per process; a test that sets ``MLOPS_*`` gets them re-read."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@contextmanager
def mlflow_pointed_at(uri: str | None) -> Iterator[None]:
    """MLflow's process-wide tracking and registry URIs at ``uri`` (None: leave them), and the
    URIs and active experiment a fixture or test found put back on exit.

    MLflow keeps them in globals (and ``MLFLOW_TRACKING_URI``); a module that moves them and
    does not put them back sends the next module's runs to its store (seen: the session's
    trained platform "not found" when test modules ran in another order).
    """
    from mlflow.tracking import fluent
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    found = tracking_utils._tracking_uri, registry_utils._registry_uri
    experiment = fluent._active_experiment_id
    if uri is not None:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        tracking_utils.set_tracking_uri(found[0])
        registry_utils.set_registry_uri(found[1])
        fluent._active_experiment_id = experiment


@pytest.fixture(autouse=True)
def mlflow_uris_restored(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test gets MLflow's global URIs back as it found them; one that uses the trained
    platform finds them pointed at it, whatever ran before."""
    uri = None
    if "trained_platform" in request.fixturenames:
        uri = request.getfixturevalue("trained_platform").tracking_uri
    with mlflow_pointed_at(uri):
        yield


@dataclass(frozen=True)
class TrainedPlatform:
    settings: Settings
    ingested: Ingested
    store: FeatureStore
    training_set: pd.DataFrame
    features: list[str]
    outcome: TrainingOutcome
    model_name: str
    champion_version: str
    tracking_uri: str


def require_service(name: str, reason: str) -> None:
    """Skip when a real backing service is missing, except in CI where that is a failure."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is required in CI but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason} (run `scripts/services.sh install start`)")


@pytest.fixture(scope="session")
def trained_platform(tmp_path_factory: pytest.TempPathFactory) -> TrainedPlatform:
    apply_process_defaults()
    build = tmp_path_factory.mktemp("platform")
    settings = Settings(build_dir=build, n_customers=TEST_CUSTOMERS, seed=7)
    settings.ensure_dirs()
    tracking_uri = f"sqlite:///{build / 'mlflow.db'}"
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    dataset = generate(settings.n_customers, settings.seed, settings.history_days)
    fresh = fresh_training_set(settings, dataset)  # the pipeline's own steps
    store = feature_store.open_store(settings.feature_repo_dir)
    outcome = train_and_gate(fresh.frame, settings, load_pipeline_config(), fresh.lineage)
    registered = register_winner(outcome, settings.model_name)
    registry.promote(settings.model_name, registered.version)  # test setup: champion as given
    feature_store.materialize(
        store, dataset.start - pd.Timedelta(days=365), dataset.end + pd.Timedelta(days=1)
    )
    return TrainedPlatform(
        settings=settings,
        ingested=fresh.ingested,
        store=store,
        training_set=fresh.frame,
        features=feature_store.model_features(settings.feature_service),
        outcome=outcome,
        model_name=settings.model_name,
        champion_version=registered.version,
        tracking_uri=tracking_uri,
    )


@pytest.fixture(scope="session")
def mlflow_sqlite_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One empty SQLite MLflow store per session (creating its schema takes seconds)."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow-store') / 'mlflow.db'}"
    mlflow.MlflowClient(uri).search_experiments()  # creates the schema once
    return uri
