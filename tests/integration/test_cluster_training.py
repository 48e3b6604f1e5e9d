"""The cluster's training path in-process: S3 offline store (moto) → train → review → retrain.

Bootstrap training registers a candidate in review (no alias moves) and writes the drift
monitor's reference window; a retrain with no trigger does nothing; a concept-drifted,
labelled batch plus a drift trigger yields a candidate that beats the champion on the same
recent holdout and passes the fairness gate, is put in review (the champion stays), and
consumes the trigger.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
import typer

from contract.objectstore import REFERENCE_KEY, RETRAIN_TRIGGER_KEY
from e2e.loop import LIVE_BATCH, LIVE_DAYS, RETRAIN_BATCH, RETRAIN_DRIFT_SIZE
from ml import registry
from ml.cli.pipeline import _retrain_from_offline_store, _train_from_offline_store
from ml.config import CandidateConfig, load_pipeline_config
from ml.data import Drift
from ml.data.generate import FEATURE_COLUMNS
from ml.features import store as feature_store
from ml.governance import approvals
from ml.ingest import ingest_pending, upstream_batch, write_landing_batch
from ml.objectstore import Bucket
from ml.settings import Settings
from tests.integration.test_ingest_offline_s3 import s3_endpoint  # noqa: F401 - fixture

NOW = pd.Timestamp.now(tz="UTC").floor("h")
LIGHT = {
    "logistic_regression": CandidateConfig(kind="logistic_regression", params={"max_iter": 300}),
    "gradient_boosting": CandidateConfig(kind="hist_gradient_boosting", params={"max_iter": 60}),
}


@pytest.fixture
def cluster(s3_endpoint, monkeypatch, tmp_path):  # noqa: F811
    import boto3

    from contract import env
    from ml import objectstore

    names = {role: f"{role}-cluster" for role in ("features", "reports")}
    monkeypatch.setenv(env.AWS_ENDPOINT_URL_S3, s3_endpoint)
    for var in (env.AWS_ACCESS_KEY_ID, env.AWS_SECRET_ACCESS_KEY):
        monkeypatch.setenv(var, "testing")
    monkeypatch.setenv(env.AWS_DEFAULT_REGION, "us-east-1")
    for role, name in names.items():
        monkeypatch.setenv(env.bucket(role), name)
    objectstore._client.cache_clear()
    for name in names.values():
        boto3.client("s3").create_bucket(Bucket=name)
    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    repo = feature_store.prepare_repo(tmp_path / "repo")
    feature_store.apply(feature_store.open_store(repo))
    settings = Settings(build_dir=tmp_path / "build", feature_repo=repo)  # seed 42, as in the e2e
    settings.ensure_dirs()
    config = load_pipeline_config().model_copy(update={"candidates": LIGHT})
    yield settings, config, Bucket(names["features"]), Bucket(names["reports"])
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous)
    objectstore._client.cache_clear()


def _deliver(features: Bucket, batch_id: str, dataset) -> None:
    write_landing_batch(features, batch_id, dataset.tables())
    ingest_pending(features)


def test_bootstrap_then_drift_triggered_retrain(cluster, monkeypatch):
    settings, config, features, reports = cluster
    _deliver(features, "b1", upstream_batch(1, NOW - pd.Timedelta(days=120)))  # as the e2e
    _deliver(features, "b3", upstream_batch(LIVE_BATCH, NOW, days=LIVE_DAYS))  # unlabelled

    full = load_pipeline_config()
    assert _train_from_offline_store(settings, full) == ("succeeded", "candidate_registered")

    first = registry.alias_version(settings.model_name, registry.CHAMPION)
    assert first is None  # bootstrap never moves an alias
    [version] = approvals.status(settings.model_name)
    assert version.status == approvals.CANDIDATE
    reference = reports.get_parquet(REFERENCE_KEY)
    assert {*FEATURE_COLUMNS, "score", "prediction", "defaulted"} <= set(reference.columns)
    assert reference["score"].between(0, 1).all() and len(reference) > 100

    registry.promote(settings.model_name, version.version)  # stands in for the review
    with pytest.raises(typer.Exit) as nothing:
        _retrain_from_offline_store(settings, config, "scheduled", False, 30.0, 120)
    assert nothing.value.exit_code == 0

    # The e2e's batch 2 (one definition): the retrained winner must pass the performance gate
    # against the champion and the fairness gate, with every candidate of the real config.
    drifted = upstream_batch(2, NOW, **RETRAIN_BATCH, drift=Drift("concept", RETRAIN_DRIFT_SIZE))
    _deliver(features, "b2", drifted)
    reports.put_bytes(RETRAIN_TRIGGER_KEY, json.dumps({"reason": "drift in utilization"}).encode())

    outcome = _retrain_from_offline_store(settings, full, "scheduled", False, 30.0, 120)

    assert outcome == ("succeeded", "candidate_registered")
    assert not reports.exists(RETRAIN_TRIGGER_KEY)
    champion = registry.alias_version(settings.model_name, registry.CHAMPION)
    assert str(champion.version) == version.version  # the new candidate waits for review
    statuses = {v.version: v.status for v in approvals.status(settings.model_name)}
    assert statuses[str(int(version.version) + 1)] == approvals.CANDIDATE
