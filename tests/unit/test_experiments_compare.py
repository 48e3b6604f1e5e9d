"""`mlops experiments compare`: runs on one holdout are tested pairwise; others are refused."""

from __future__ import annotations

import json
import sys

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ml.cli.main import app, run
from ml.errors import UserError
from ml.experiments.compare import COMPARISONS_EXPERIMENT, compare_runs
from ml.lineage import Lineage
from ml.train import LABEL, ROW_ID, log_holdout_predictions
from tests.conftest import mlflow_pointed_at

ROWS = 400


def lineage(training_set: str) -> Lineage:
    return Lineage("snap", training_set, "credit_v1", "commit", "lock", seed=1)


def log_run(name: str, training_set: str, separation: float, seed: int, rows=ROWS) -> str:
    """A training-like run: lineage tags and holdout probabilities of a model of given skill."""
    rng = np.random.default_rng(100)  # the same labels for every run
    y = rng.integers(0, 2, rows)
    noise = np.random.default_rng(seed).standard_normal(rows)
    holdout = pd.DataFrame({ROW_ID: np.arange(rows), LABEL: y})
    probability = 1 / (1 + np.exp(-(noise + separation * (2 * y - 1))))
    with mlflow.start_run(run_name=name, tags=lineage(training_set).tags()) as run:
        log_holdout_predictions(holdout, probability)
    return run.info.run_id


@pytest.fixture(scope="module")
def store(mlflow_sqlite_uri):
    with mlflow_pointed_at(mlflow_sqlite_uri):
        mlflow.set_experiment("compare-tests")
        yield mlflow_sqlite_uri


@pytest.fixture
def runs(store, logged_runs):
    mlflow.set_tracking_uri(store)  # another module's fixture may have moved the global URI
    return logged_runs


@pytest.fixture(scope="module")
def logged_runs(store):
    return {
        "uri": store,
        "weak": log_run("weak", "sha-a", 0.3, seed=1),
        "strong": log_run("strong", "sha-a", 1.5, seed=2),
        "twin": log_run("twin", "sha-a", 0.3, seed=3),
        "elsewhere": log_run("elsewhere", "sha-b", 1.5, seed=4),
        "fewer_rows": log_run("fewer_rows", "sha-a", 1.5, seed=5, rows=ROWS - 1),
    }


def test_each_run_is_tested_against_the_first_with_holm_over_all_tests(runs):
    comparison = compare_runs([runs["weak"], runs["strong"], runs["twin"]], 0.5, resamples=300)
    assert [p.challenger for p in comparison.pairs] == [runs["strong"], runs["twin"]]
    strong, twin = ({t.metric: t for t in p.tests} for p in comparison.pairs)
    assert set(strong) == {"roc_auc", "pr_auc", "brier", "log_loss", "accuracy"}
    assert strong["roc_auc"].significant and strong["roc_auc"].method == "DeLong"
    assert not twin["roc_auc"].significant
    p_values = sorted(t.p_value for p in comparison.pairs for t in p.tests)
    assert min(t.p_adjusted for p in comparison.pairs for t in p.tests) == pytest.approx(
        min(1.0, p_values[0] * len(p_values))
    )


@pytest.mark.parametrize(
    ("other", "message"),
    [("elsewhere", "different holdouts"), ("fewer_rows", "not their holdout rows")],
)
def test_runs_on_different_holdouts_are_refused(runs, other, message):
    with pytest.raises(UserError, match=message):
        compare_runs([runs["weak"], runs[other]], 0.5)


def test_json_form_and_report_logged_to_mlflow(runs, tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", runs["uri"])
    args = ["experiments", "compare", runs["weak"], runs["strong"], "--json"]
    result = CliRunner().invoke(app, [*args, "--resamples", "200", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["correction"] == "holm" and data["holdout_rows"] == ROWS
    assert {t["metric"] for t in data["pairs"][0]["tests"]} >= {"roc_auc", "accuracy"}
    assert {p.name for p in tmp_path.iterdir()} >= {"compare.html", "roc.png", "intervals.png"}
    logged = mlflow.get_run(data["mlflow_run_id"])
    assert mlflow.get_experiment(logged.info.experiment_id).name == COMPARISONS_EXPERIMENT
    assert logged.data.tags["comparison.runs"] == f"{runs['weak']},{runs['strong']}"


def test_a_refusal_is_one_line_and_a_non_zero_exit(runs, monkeypatch, capsys):
    monkeypatch.setenv("MLOPS_MLFLOW_TRACKING_URI", runs["uri"])
    argv = ["mlops", "experiments", "compare", runs["weak"], runs["elsewhere"], "--no-log"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        run()
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
