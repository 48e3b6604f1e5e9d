"""`mlops experiments tune`: an Optuna study as nested MLflow runs, resumable from its storage."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from ml.config import load_pipeline_config
from ml.errors import UserError
from ml.experiments.tune import STUDY_TAG, tune
from ml.lineage import Lineage
from ml.train import HOLDOUT_PREDICTIONS_ARTIFACT, LABEL

FEATURES = ["income", "debt_ratio"]


def tiny_training_set(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "application_id": np.arange(rows),
            "event_timestamp": pd.date_range("2026-01-01", periods=rows, freq="h", tz="UTC"),
            "income": rng.normal(size=rows),
            "debt_ratio": rng.normal(size=rows),
        }
    )
    risk = frame["debt_ratio"] - frame["income"] + rng.normal(size=rows)
    frame[LABEL] = (risk > 0.5).astype("int64")
    return frame


@pytest.fixture
def study(mlflow_sqlite_uri, tmp_path):
    mlflow.set_tracking_uri(mlflow_sqlite_uri)
    lineage = Lineage("snap", "tiny-training-set", "credit_v1", "commit", "lock", seed=3)
    args = (tiny_training_set(), FEATURES, "logistic_regression", load_pipeline_config(), lineage)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    return lambda trials: tune(*args, trials, storage, log_best_model=False)


def test_trials_are_nested_runs_with_the_estimators_own_params_and_the_study_resumes(study):
    first = study(2)
    resumed = study(3)
    assert (first.trials_run, resumed.trials_run, resumed.finished) == (2, 1, 3)
    assert resumed.parent_run_id == first.parent_run_id
    children = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.mlflow.parentRunId = '{first.parent_run_id}'",
        output_format="list",
    )
    assert len(children) == 3
    expected = set(LogisticRegression().get_params())
    assert all(expected <= set(child.data.params) for child in children)
    assert {child.data.tags[STUDY_TAG] for child in children} == {first.study_name}
    assert {child.data.tags["lineage.training_set_sha256"] for child in children} == {
        "tiny-training-set"
    }
    best = mlflow.get_run(resumed.best_run_id)
    assert "roc_auc" in best.data.metrics
    assert HOLDOUT_PREDICTIONS_ARTIFACT in {
        f"holdout/{a.path.split('/')[-1]}"
        for a in mlflow.MlflowClient().list_artifacts(best.info.run_id, "holdout")
    }


def test_an_unknown_candidate_is_a_user_error(study):
    with pytest.raises(UserError, match="unknown candidate"):
        tune(tiny_training_set(), FEATURES, "nope", load_pipeline_config(),
             Lineage("s", "t", "f", "c", "l", 1), 1, "sqlite:///:memory:")  # fmt: skip
