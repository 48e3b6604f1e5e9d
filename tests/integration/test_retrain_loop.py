"""The closed loop, one test per branch: promoted, rejected by the gate, rolled back."""

from __future__ import annotations

import contextlib
import math

import mlflow
import pytest

from ml import registry
from ml.config import CandidateConfig, load_pipeline_config
from ml.data import Drift, generate, point_in_time_frame
from ml.governance import audit
from ml.lineage import Lineage
from ml.monitor.quality import QualityDecision
from ml.pipeline import register_winner, train_and_gate
from ml.retrain import Trigger, guard, retrain, trigger
from ml.settings import Settings

DRIFTED = Trigger(True, "data drift in utilization")


def _lineage(settings: Settings) -> Lineage:
    return Lineage("snap", "train", settings.feature_service, "test", "lock", settings.seed)


def _frame(seed: int, drift: Drift | None = None):
    return point_in_time_frame(generate(1200, seed, days=270, drift=drift))


# Two quick candidates: the branches, not the model zoo, are under test here.
LIGHT_CANDIDATES = {
    "logistic_regression": CandidateConfig(kind="logistic_regression", params={"max_iter": 300}),
    "gradient_boosting": CandidateConfig(kind="hist_gradient_boosting", params={"max_iter": 60}),
}


@pytest.fixture(scope="module")
def registry_with_champion(tmp_path_factory):
    """A registry of its own with a champion trained on undrifted data (once per module)."""
    build = tmp_path_factory.mktemp("loop")
    previous_uri = mlflow.get_tracking_uri()
    uri = f"sqlite:///{build / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    settings = Settings(build_dir=build, seed=3)
    config = load_pipeline_config().model_copy(update={"candidates": LIGHT_CANDIDATES})
    outcome = train_and_gate(_frame(3), settings, config, _lineage(settings))
    first = register_winner(outcome, settings.model_name).version
    yield settings, config, first
    mlflow.set_tracking_uri(previous_uri)
    mlflow.set_registry_uri(previous_uri)


@pytest.fixture
def loop(registry_with_champion):
    """Each test starts with the first version as champion and no previous champion."""
    settings, config, first = registry_with_champion
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(settings.model_name, registry.CHAMPION, first)
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # not set yet
        client.delete_registered_model_alias(settings.model_name, registry.PREVIOUS_CHAMPION)
    return settings, config


def test_no_trigger_without_drift_or_quality_drop():
    assert not trigger(None, None).triggered


def test_concept_drift_retrains_and_promotes_a_better_model(loop):
    settings, config = loop
    fresh = _frame(11, Drift("concept", 1.0))
    decision = retrain(DRIFTED, fresh, settings, config, _lineage(settings))
    assert decision.promoted, decision.reason
    assert decision.champion_after == decision.new_version != decision.champion_before
    best = max(decision.gate_metrics["candidates"].values(), key=lambda m: m["roc_auc"])
    assert best["roc_auc"] >= decision.gate_metrics["champion"]["roc_auc"]
    entries = audit.read(settings.audit_log)
    assert entries[-1]["action"] == "retrain-decision" and entries[-1]["details"]["promoted"]
    assert audit.verify(settings.audit_log).ok


def test_gate_rejection_keeps_the_champion(loop):
    settings, config = loop
    strict = config.model_copy(
        update={"gate": config.gate.model_copy(update={"min_roc_auc": 0.99})}
    )
    before = registry.alias_version(settings.model_name, registry.CHAMPION).version
    decision = retrain(DRIFTED, _frame(12), settings, strict, _lineage(settings))
    assert not decision.promoted
    assert "kept" in decision.reason
    assert str(registry.alias_version(settings.model_name, registry.CHAMPION).version) == str(
        before
    )
    version = mlflow.MlflowClient().get_model_version(settings.model_name, str(before))
    assert "kept" in version.tags["retrain-decision.reason"]


def test_degraded_live_quality_after_promotion_rolls_back(loop):
    settings, config = loop
    first = str(registry.alias_version(settings.model_name, registry.CHAMPION).version)
    promoted = retrain(
        DRIFTED, _frame(11, Drift("concept", 1.0)), settings, config, _lineage(settings)
    )
    assert promoted.promoted
    bad = QualityDecision(True, "quality drop: AUC 0.61 vs 0.84", 0.23, 1e-6, 0.05, 1e-4, math.nan)
    decision = guard(bad, settings)
    assert decision.champion_after == first
    assert str(registry.alias_version(settings.model_name, registry.CHAMPION).version) == first
    assert audit.read(settings.audit_log)[-1]["action"] == "rollback"


def test_healthy_live_quality_keeps_the_new_champion(loop):
    settings, config = loop
    promoted = retrain(
        DRIFTED, _frame(11, Drift("concept", 1.0)), settings, config, _lineage(settings)
    )
    fine = QualityDecision(False, "quality holds", 0.0, 0.5, 0.0, 0.5, math.nan)
    assert guard(fine, settings).champion_after == promoted.new_version
