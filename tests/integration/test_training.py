"""Training, tracking and registration on the shared trained platform (real MLflow, real Feast).

Model tests are behavioural: minimum quality, directional expectations a credit officer would
state, and invariance to what the model must not see.
"""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from ml import registry
from ml.config import load_pipeline_config
from ml.data import PROTECTED_ATTRIBUTES
from ml.pipeline import train_and_gate
from ml.train import EXPERIMENT, time_split


@pytest.fixture(scope="module")
def runs(trained_platform):
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    return MlflowClient().search_runs([experiment.experiment_id])


@pytest.fixture(scope="module")
def champion(trained_platform):
    return mlflow.sklearn.load_model(registry.model_uri(trained_platform.model_name))


def test_every_candidate_is_a_tracked_run_with_lineage(trained_platform, runs):
    assert len(runs) >= 3
    lineage = trained_platform.outcome.lineage.tags()
    for run in runs:
        assert {k: run.data.tags[k] for k in lineage} == lineage
        assert run.data.metrics["roc_auc"] > 0.5
        assert run.data.params["features"].split(",") == trained_platform.features
    assert len(lineage["lineage.lock_sha256"]) == 64
    assert lineage["lineage.git_commit"] != ""


def test_champion_is_the_best_candidate_that_passed(trained_platform):
    outcome = trained_platform.outcome
    passed = [c for c in outcome.candidates if outcome.decisions[c.name].passed]
    assert outcome.winner == max(passed, key=lambda c: c.metrics["roc_auc"])
    version = registry.alias_version(trained_platform.model_name, registry.CHAMPION)
    assert version.run_id == outcome.winner.run_id


def test_champion_clears_the_quality_floor(trained_platform):
    assert (
        trained_platform.outcome.winner.metrics["roc_auc"]
        >= load_pipeline_config().gate.min_roc_auc
    )


@pytest.mark.parametrize(
    ("feature", "factor"),
    [("utilization", 1.6), ("late_payments_90d", None), ("loan_amount", 3.0), ("income", 0.5)],
)
def test_riskier_applicants_score_higher(trained_platform, champion, feature, factor):
    _, holdout = time_split(trained_platform.training_set, 0.25)
    rows = holdout[trained_platform.features].head(300).copy()
    riskier = rows.copy()
    riskier[feature] = riskier[feature] + 2 if factor is None else riskier[feature] * factor
    before = champion.predict_proba(rows)[:, 1]
    after = champion.predict_proba(riskier)[:, 1]
    assert np.mean(after >= before - 1e-9) > 0.95
    assert after.mean() > before.mean()


def test_protected_attributes_are_not_model_inputs(trained_platform):
    assert not set(PROTECTED_ATTRIBUTES) & set(trained_platform.features)


def test_training_is_deterministic_for_a_seed(trained_platform):
    again = train_and_gate(
        trained_platform.training_set,
        trained_platform.settings,
        load_pipeline_config(),
        trained_platform.outcome.lineage,
    )
    first = {c.name: c.metrics for c in trained_platform.outcome.candidates}
    assert {c.name: c.metrics for c in again.candidates} == first
