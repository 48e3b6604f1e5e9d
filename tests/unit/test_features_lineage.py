"""Lineage and reproducibility on the trained platform: manifest, chain, exact rebuild."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ml.cli.features import app
from ml.features import store as feature_store
from ml.features.lineage import (
    MANIFEST_ARTIFACT,
    TrainingSetManifest,
    lineage_chain,
    log_manifest,
    record_training_set,
    run_manifest,
)
from ml.features.rebuild import rebuild_as_of, rebuild_training_set
from ml.pipeline import labelled_entities
from ml.settings import get_settings


@pytest.fixture(scope="module")
def recorded(trained_platform, tmp_path_factory):
    """The pipeline's training set, recorded and logged as the pipeline is meant to."""
    platform = trained_platform
    archive = tmp_path_factory.mktemp("archive")
    entities = labelled_entities(platform.ingested.tables["applications"])
    manifest = record_training_set(
        archive,
        platform.ingested.tables,
        entities,
        platform.training_set,
        platform.settings.feature_service,
        platform.ingested.snapshot_sha256,
    )
    for candidate in platform.outcome.candidates:
        log_manifest(manifest, candidate.run_id)
    return manifest, archive


def test_manifest_records_service_sources_and_query(recorded, trained_platform):
    manifest, archive = recorded
    assert manifest.feature_service == "credit_v1" and manifest.feature_service_version == "1"
    assert "customer_transactions:late_payments_90d" in manifest.feature_refs
    assert manifest.ttl_seconds == {
        "customer_profile": 180 * 86400,
        "customer_transactions": 14 * 86400,
    }
    assert manifest.snapshot_sha256 == trained_platform.ingested.snapshot_sha256
    assert manifest.rows == len(trained_platform.training_set)
    assert manifest.as_of_start <= manifest.as_of_end
    assert (archive / "training_sets" / f"{manifest.training_set_sha256}.json").exists()
    assert all((archive / f"{sha}.parquet").exists() for sha in manifest.source_sha256.values())


def test_manifest_is_on_the_run_and_the_chain_reaches_the_sources(recorded, trained_platform):
    manifest, _ = recorded
    chain = lineage_chain(trained_platform.model_name, "champion")
    assert chain.version == trained_platform.champion_version
    assert run_manifest(chain.run_id) == manifest
    text = "\n".join(chain.lines())
    for fact in (manifest.training_set_sha256, manifest.snapshot_sha256, "credit_v1 version 1"):
        assert fact in text
    assert MANIFEST_ARTIFACT.endswith(".json")


def test_rebuild_reproduces_the_training_set_bit_for_bit(recorded, trained_platform, tmp_path):
    manifest, archive = recorded
    rebuilt = rebuild_training_set(manifest, archive, tmp_path)
    assert rebuilt.matches, (rebuilt.sha256, manifest.training_set_sha256)
    assert rebuilt.frame.equals(trained_platform.training_set)


def test_rebuild_as_of_finds_the_run_through_mlflow(recorded, tmp_path):
    from datetime import UTC, datetime

    _, archive = recorded
    rebuilt = rebuild_as_of(datetime.now(UTC), archive, tmp_path)
    assert rebuilt.run_id is not None and rebuilt.matches


def test_a_manifest_round_trips_as_json(recorded):
    manifest, _ = recorded
    assert TrainingSetManifest.from_dict(manifest.to_dict()) == manifest


@pytest.fixture()
def cli_env(trained_platform, monkeypatch):
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", trained_platform.tracking_uri)
    monkeypatch.setenv("MLOPS_BUILD_DIR", str(trained_platform.settings.build))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_lineage_and_rebuild(recorded, trained_platform, cli_env):
    manifest, archive = recorded
    runner = CliRunner()
    shown = runner.invoke(app, ["lineage", "champion", "--model", trained_platform.model_name])
    assert shown.exit_code == 0, shown.output
    assert manifest.training_set_sha256 in shown.output
    rebuilt = runner.invoke(app, ["rebuild", "--as-of", "now", "--archive", str(archive)])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "identical    yes" in rebuilt.output


def test_cli_rebuild_before_any_run_is_a_user_error(recorded, cli_env):
    _, archive = recorded
    result = CliRunner().invoke(
        app, ["rebuild", "--as-of", "2000-01-01", "--archive", str(archive)]
    )
    assert "no training run with a feature manifest" in str(result.exception)


def test_service_refs_match_the_model_features(trained_platform):
    manifest_refs = feature_store.model_features("credit_v1")
    assert "income" in manifest_refs and "loan_amount" in manifest_refs
