"""`mlops experiments reproduce`: the champion's run retrained from its manifest, bit for bit.

Real MLflow (the shared trained platform's SQLite store), real Feast rebuild, real retraining.
Runs with altered tags are copies in their own experiment; reproductions go to theirs, so the
platform's `credit-risk` experiment keeps only its training runs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from ml import registry
from ml.cli.main import app, run
from ml.config import load_pipeline_config
from ml.errors import UserError
from ml.experiments import reproduce as reproduction
from ml.features.lineage import MANIFEST_ARTIFACT
from ml.pipeline import labelled_entities, record_lineage
from ml.train import HOLDOUT_PREDICTIONS_ARTIFACT
from tests.conftest import mlflow_pointed_at

COPIES = "reproduce-tests"


@pytest.fixture(scope="module")
def champion_run(trained_platform) -> str:
    """The champion's run, with the manifest `mlops pipeline train` logs to every candidate."""
    tp = trained_platform
    with mlflow_pointed_at(tp.tracking_uri):
        entities = labelled_entities(tp.ingested.tables["applications"])
        record_lineage(tp.settings, tp.ingested, entities, tp.training_set, tp.outcome)
        return str(registry.alias_version(tp.model_name, registry.CHAMPION).run_id)


@pytest.fixture
def cli_env(trained_platform, champion_run, monkeypatch):
    """The champion's run id; the CLI finds the platform's MLflow store and snapshot archive.
    (conftest points MLflow's globals at the platform for each test and puts them back.)"""
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", trained_platform.tracking_uri)
    monkeypatch.setenv("MLOPS_BUILD_DIR", str(trained_platform.settings.build))
    return champion_run


def copy_run(source: str, **tags: str) -> str:
    """A copy of ``source`` (params, metrics, tags, manifest, predictions, model requirements)
    in its own experiment, with ``tags`` (``__`` for ``.``) overriding the source's."""
    client = MlflowClient()
    original = client.get_run(source)
    experiment = client.get_experiment_by_name(COPIES)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(COPIES)
    kept = {k: v for k, v in original.data.tags.items() if not k.startswith("mlflow.")}
    kept |= {k.replace("__", "."): v for k, v in tags.items()}
    with mlflow.start_run(experiment_id=experiment_id, run_name="copy", tags=kept) as copy:
        mlflow.log_params(original.data.params)
        mlflow.log_metrics(original.data.metrics)
        for artifact in (
            MANIFEST_ARTIFACT,
            HOLDOUT_PREDICTIONS_ARTIFACT,
            reproduction.MODEL_REQUIREMENTS,
        ):
            path = mlflow.artifacts.download_artifacts(artifact_uri=f"runs:/{source}/{artifact}")
            mlflow.log_artifact(path, str(Path(artifact).parent))
    return copy.info.run_id


def reproductions_of(run_id: str) -> list:
    return mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.{reproduction.REPRODUCES_TAG} = '{run_id}'",
        output_format="list",
    )


def test_the_champion_run_is_reproduced_bit_for_bit_and_recorded(cli_env, trained_platform):
    champion = cli_env
    result = CliRunner().invoke(app, ["experiments", "reproduce", champion, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["verdict"] == "reproduced"
    assert data["environment"]["match"] and data["environment"]["packages"] == []
    assert data["environment"]["compared_packages"] > 0
    lineage = trained_platform.outcome.lineage
    assert data["training_set"]["actual_sha256"] == lineage.training_set_sha256
    assert {m["name"] for m in data["metrics"]} >= {"roc_auc", "pr_auc", "brier", "accuracy"}
    assert all(m["original"] == m["reproduced"] for m in data["metrics"])
    predictions = data["predictions"]
    assert predictions["tolerance"] == 0 and predictions["max_abs_difference"] == 0
    assert predictions["bitwise_equal"] == predictions["rows"] > 100
    assert predictions["only_original"] == predictions["only_reproduced"] == 0
    new = mlflow.get_run(data["reproduction_run_id"])
    assert new.data.tags[reproduction.REPRODUCES_TAG] == champion
    experiment = mlflow.get_experiment(new.info.experiment_id).name
    assert experiment == reproduction.REPRODUCTIONS_EXPERIMENT
    same = {k: v for k, v in lineage.tags().items() if k != "lineage.git_commit"}  # today's
    assert {k: new.data.tags[k] for k in same} == same
    assert mlflow.get_run(champion).data.tags[reproduction.REPRODUCED_BY_TAG] == new.info.run_id
    recorded = mlflow.artifacts.load_dict(
        f"runs:/{new.info.run_id}/{reproduction.REPORT_ARTIFACT}"
    )
    assert recorded == data


@pytest.mark.parametrize("candidate", ["random_forest", "gradient_boosting"])
def test_the_forest_and_boosting_candidates_reproduce_bitwise_too(
    cli_env, trained_platform, candidate
):
    [trained] = [c for c in trained_platform.outcome.candidates if c.name == candidate]
    result = reproduction.reproduce(trained.run_id, trained_platform.settings)
    assert result.verdict == "reproduced" and result.predictions.tolerance == 0
    assert result.predictions.bitwise_equal == result.predictions.rows > 100
    assert {m.name: m.reproduced for m in result.metrics} == trained.metrics


def test_an_environment_difference_is_named_recorded_and_loosens_the_tolerance(
    cli_env, monkeypatch
):
    copy = copy_run(cli_env, lineage__lock_sha256="0" * 64)
    installed = reproduction.installed_version
    monkeypatch.setattr(
        reproduction,
        "installed_version",
        lambda name: "0.0.1" if name == "scikit-learn" else installed(name),
    )
    result = CliRunner().invoke(app, ["experiments", "reproduce", copy])
    assert result.exit_code == 0, result.output
    recorded_sklearn = reproduction.model_requirements(copy)["scikit-learn"]
    assert f"uv.lock sha256 {'0' * 12} recorded" in result.stdout
    assert f"scikit-learn {recorded_sklearn} recorded, 0.0.1 now" in result.stdout
    assert "tolerance 1e-09" in result.stdout and "verdict: reproduced" in result.stdout
    [new] = reproductions_of(copy)
    assert new.data.tags["reproduction.environment_match"] == "false"
    report = mlflow.artifacts.load_dict(f"runs:/{new.info.run_id}/{reproduction.REPORT_ARTIFACT}")
    assert report["environment"]["packages"] == [
        {"name": "scikit-learn", "recorded": recorded_sklearn, "installed": "0.0.1"}
    ]


def test_strict_env_refuses_a_different_environment_before_training(cli_env, monkeypatch):
    copy = copy_run(cli_env, lineage__lock_sha256="0" * 64)
    result = CliRunner().invoke(app, ["experiments", "reproduce", copy, "--strict-env"])
    assert isinstance(result.exception, UserError)
    assert "uv.lock sha256 000000000000 recorded" in str(result.exception)
    assert reproductions_of(copy) == []


def test_a_training_set_that_rebuilds_differently_is_refused_with_both_hashes(
    cli_env, trained_platform
):
    copy = copy_run(cli_env, lineage__training_set_sha256="f" * 64)
    actual = trained_platform.outcome.lineage.training_set_sha256
    with pytest.raises(UserError, match=f"has sha256 {actual}, the run was trained on f{{64}}"):
        reproduction.reproduce(copy, trained_platform.settings)
    assert reproductions_of(copy) == []


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (None, "no run 0123456789abcdef"),
        ({}, "has no lineage.snapshot_sha256"),
        ({"lineage.seed": "1"}, "only runs trained by `mlops pipeline train`"),
        ("champion's, without a manifest", f"has no training-set manifest ({MANIFEST_ARTIFACT})"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(cli_env, monkeypatch, capsys, tags, expected):
    run_id = "0123456789abcdef0123456789abcdef"
    if tags is not None:
        params = {}
        if isinstance(tags, str):
            champion = mlflow.get_run(cli_env).data
            tags = {k: v for k, v in champion.tags.items() if not k.startswith("mlflow.")}
            params = champion.params
        with mlflow.start_run(experiment_id="0", tags=tags) as bare:
            mlflow.log_params(params)
            run_id = bare.info.run_id
    monkeypatch.setattr(sys, "argv", ["mlops", "experiments", "reproduce", run_id])
    with pytest.raises(SystemExit) as exit_:
        run()
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: ") and "\n" not in error and expected in error


@pytest.mark.parametrize(
    ("logged", "params", "note"),
    [
        ({"n_estimators": "200", "max_depth": "8", "min_samples_leaf": "20", "n_jobs": "1"},
         {"n_estimators": 200, "max_depth": 8, "min_samples_leaf": 20, "n_jobs": 1}, None),
        ({"n_estimators": "100", "max_depth": "None", "min_samples_leaf": "20", "n_jobs": "1"},
         {"n_estimators": 100, "max_depth": None, "min_samples_leaf": 20, "n_jobs": 1},
         "random_forest.max_depth: the run used None, the config has 8"),
    ],
)  # fmt: skip
def test_the_run_parameters_are_retrained_and_config_differences_reported(logged, params, note):
    recorded = {"kind": "random_forest", "features": "a,b", **logged}
    candidate, notes = reproduction.recorded_candidate(
        "random_forest", recorded, load_pipeline_config()
    )
    assert (candidate.kind, candidate.params) == ("random_forest", params)
    assert (note in notes) if note else notes == []
