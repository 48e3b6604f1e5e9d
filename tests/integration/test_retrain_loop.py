"""The closed loop, one test per branch: a better model waits for its review, then ships; a
worse one is kept out; a bad promotion is rolled back through the state machine."""

from __future__ import annotations

import contextlib

import mlflow
import pytest

from ml import registry
from ml.config import CandidateConfig, load_pipeline_config
from ml.data import Drift, generate, point_in_time_frame
from ml.errors import UserError
from ml.governance import approvals, audit
from ml.lineage import Lineage
from ml.pipeline import register_winner, train_and_gate
from ml.retrain import Trigger, retrain_for_review, trigger
from ml.settings import Settings, get_settings

DRIFTED = Trigger(True, "data drift in utilization")


def _lineage(settings: Settings) -> Lineage:
    return Lineage("snap", "train", settings.feature_service, "test", "lock", settings.seed)


def _frame(seed: int, drift: Drift | None = None):
    """The training set as Feast builds it: no protected attributes (those join from
    ``customers`` for the fairness gate only)."""
    frame = point_in_time_frame(generate(1200, seed, days=270, drift=drift))
    return frame.drop(columns=["sex", "age_band"])


def _customers(seed: int, drift: Drift | None = None):
    return generate(1200, seed, days=270, drift=drift).customers


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
    registry.promote(settings.model_name, first)  # test setup: a champion to retrain against
    yield settings, config, first
    mlflow.set_tracking_uri(previous_uri)
    mlflow.set_registry_uri(previous_uri)


@pytest.fixture
def loop(registry_with_champion, monkeypatch):
    """Each test starts with the first version as champion and no previous champion; every
    audit entry (the pipeline's, the reviewers') goes to the module's one log."""
    settings, config, first = registry_with_champion
    monkeypatch.setenv("MLOPS_BUILD_DIR", str(settings.build))
    get_settings.cache_clear()
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(settings.model_name, registry.CHAMPION, first)
    with contextlib.suppress(mlflow.exceptions.MlflowException):  # not set yet
        client.delete_registered_model_alias(settings.model_name, registry.PREVIOUS_CHAMPION)
    yield settings, config
    get_settings.cache_clear()


def test_no_trigger_without_drift_or_quality_drop():
    assert not trigger(None, None).triggered


CONCEPT = Drift("concept", 1.0)


def _retrain(settings, config, seed=11, drift: Drift | None = CONCEPT):
    frame, customers = _frame(seed, drift), _customers(seed, drift)
    decision, _ = retrain_for_review(
        DRIFTED, frame, settings, config, _lineage(settings), customers
    )
    return decision


def _champion(settings) -> str:
    return str(registry.alias_version(settings.model_name, registry.CHAMPION).version)


def test_a_better_model_waits_for_review_then_ships(loop):
    settings, config = loop
    before = _champion(settings)
    decision = _retrain(settings, config)
    version = decision.new_version
    assert version is not None, decision.reason
    # Without an approval the champion does not change, and nobody may promote it yet.
    assert _champion(settings) == before and not decision.promoted
    with pytest.raises(UserError):
        approvals.promote_to_production(
            settings.model_name, version, user="carol", role="release_manager"
        )
    assert _champion(settings) == before
    # Reviewed and approved by someone else, then promoted: it is the champion.
    approvals.approve(settings.model_name, version, user="bob", role="reviewer")
    approvals.promote_to_production(
        settings.model_name, version, user="carol", role="release_manager"
    )
    assert _champion(settings) == version
    tags = mlflow.MlflowClient().get_model_version(settings.model_name, version).tags
    assert tags["governance.fairness_gate"] == "passed" and tags["governance.model_card"]
    actions = [e["action"] for e in audit.read(audit.default_path())]
    assert actions[-5:] == ["register", "request", "retrain-decision", "approve", "promote"]
    assert audit.verify(audit.default_path()).ok


def test_gate_rejection_registers_nothing(loop):
    settings, config = loop
    strict = config.model_copy(
        update={"gate": config.gate.model_copy(update={"min_roc_auc": 0.99})}
    )
    before = _champion(settings)
    decision = _retrain(settings, strict, seed=12, drift=None)
    assert decision.new_version is None and "kept" in decision.reason
    assert _champion(settings) == before
    version = mlflow.MlflowClient().get_model_version(settings.model_name, before)
    assert "kept" in version.tags["retrain-decision.reason"]
