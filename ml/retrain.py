"""The closed loop: drift or a quality drop triggers retraining; only a reviewed model ships.

1. :func:`trigger` turns the monitors' verdicts into a decision to retrain, with its reason.
2. :func:`retrain_for_review` trains the candidates on fresh data from the feature store, scores
   the current champion on the *same* recent holdout, and registers the best candidate that
   passes the gate against that champion (``ml/pipeline.yaml``) and the fairness gate as a
   candidate in review. Nothing here moves an alias: promotion (and rollback) go through the
   governance state machine (``ml.governance.approvals``), like for any other version.

Every decision is recorded twice, with its reason: as MLflow tags on the model version it
concerns and as an entry in the append-only, hash-chained audit log.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient

from ml import registry
from ml.config import PipelineConfig
from ml.evaluate import classification_metrics
from ml.features.store import model_features
from ml.governance import audit
from ml.lineage import Lineage
from ml.monitor.drift import DriftResult
from ml.monitor.quality import QualityDecision
from ml.pipeline import train_and_gate
from ml.settings import Settings
from ml.train import LABEL, time_split

ACTOR = "retraining-pipeline"


@dataclass(frozen=True)
class Trigger:
    triggered: bool
    reason: str


@dataclass
class RetrainDecision:
    """What the loop decided and why; ``summary.json``'s ``retraining`` section."""

    triggered: bool
    reason: str
    promoted: bool = False
    gate_metrics: dict[str, Any] = field(default_factory=dict)
    champion_before: str | None = None
    champion_after: str | None = None
    new_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def trigger(drift: DriftResult | None, quality: QualityDecision | None) -> Trigger:
    """Retrain when the dataset drifted or quality dropped; say which, or why not."""
    reasons = []
    if drift is not None and drift.drift_detected:
        drifted = ", ".join(c.column for c in drift.columns if c.drifted)
        reasons.append(f"data drift in {drifted}")
    if quality is not None and quality.drop:
        reasons.append(quality.reason)
    if reasons:
        return Trigger(True, "; ".join(reasons))
    return Trigger(False, "no drift and no quality drop: champion stays, no retraining")


def _champion_on_holdout(model_name, training_set, features, config) -> dict[str, float] | None:
    """The champion's metrics on the holdout the candidates are judged on."""
    if registry.alias_version(model_name, registry.CHAMPION) is None:
        return None
    model = mlflow.sklearn.load_model(registry.model_uri(model_name))
    _, holdout = time_split(training_set, config.split.holdout_fraction)
    score = model.predict_proba(holdout[features])[:, 1]
    return classification_metrics(holdout[LABEL], score, config.decision_threshold)


# The decision's audit action and its tags on the version it concerns (`mlops status` reads them).
DECISION_ACTION = "retrain-decision"
DECISION_REASON_TAG = f"{DECISION_ACTION}.reason"
DECISION_PROMOTED_TAG = f"{DECISION_ACTION}.promoted"


def _record(decision: RetrainDecision, settings: Settings) -> RetrainDecision:
    model_name = settings.model_name
    version = decision.new_version or decision.champion_after or decision.champion_before
    if version is not None:
        client = MlflowClient()
        reason = decision.reason[:4000]
        client.set_model_version_tag(model_name, version, DECISION_REASON_TAG, reason)
        client.set_model_version_tag(
            model_name, version, DECISION_PROMOTED_TAG, str(decision.promoted)
        )
    subject = audit.model_subject(model_name, version or "none")
    details = _jsonable(decision.to_dict())
    audit.append(DECISION_ACTION, subject, ACTOR, details, path=settings.audit_log)
    return decision


def _version(model_version) -> str | None:
    return None if model_version is None else str(model_version.version)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, float):
        return round(value, 6)
    return value


# --- The cluster's retraining: a pending trigger (or age) → a candidate for review ------------


def pending_trigger(reports) -> dict[str, Any] | None:
    """The drift monitor's retraining request in the reports bucket, if one is pending."""
    import json

    from contract.objectstore import RETRAIN_TRIGGER_KEY

    if not reports.exists(RETRAIN_TRIGGER_KEY):
        return None
    try:
        return json.loads(reports.get_bytes(RETRAIN_TRIGGER_KEY)) or {}
    except ValueError:
        return {"reason": "unreadable trigger"}


def consume_trigger(reports) -> None:
    """Archive the trigger under ``triggers/consumed/`` and remove it (the request is served)."""
    import time

    from contract.objectstore import RETRAIN_TRIGGER_KEY

    data = reports.get_bytes(RETRAIN_TRIGGER_KEY)
    reports.put_bytes(f"triggers/consumed/{int(time.time())}.json", data, "application/json")
    reports.delete(RETRAIN_TRIGGER_KEY)


def champion_age_days(model_name: str) -> float | None:
    """Days since the champion version was created (None without a champion)."""
    import time

    champion = registry.alias_version(model_name, registry.CHAMPION)
    if champion is None:
        return None
    return (time.time() - champion.creation_timestamp / 1000) / 86400


def retrain_for_review(
    why: Trigger,
    training_set: pd.DataFrame,
    settings: Settings,
    config: PipelineConfig,
    lineage: Lineage,
    customers: pd.DataFrame,
):
    """Train, gate against the champion on the same recent holdout, register for review.

    Nothing is promoted: a winner becomes a candidate in review
    (``ml.governance.approvals``) and a person approves and promotes it.

    Returns:
        ``(decision, outcome)``; ``decision.new_version`` is the candidate, if any.
    """
    from ml.pipeline import keep_fair_winner, register_for_review

    model_name = settings.model_name
    champion = registry.alias_version(model_name, registry.CHAMPION)
    decision = RetrainDecision(why.triggered, why.reason, champion_before=_version(champion))
    features = model_features(settings.feature_service)
    champion_metrics = _champion_on_holdout(model_name, training_set, features, config)
    outcome = train_and_gate(training_set, settings, config, lineage, champion_metrics)
    keep_fair_winner(outcome, training_set, customers, settings, config)
    decision.gate_metrics = {
        "champion": champion_metrics,
        "candidates": {c.name: c.metrics for c in outcome.candidates},
        "gate": {name: d.summary() for name, d in outcome.decisions.items()},
    }
    decision.gate_metrics["fairness"] = outcome.notes
    if outcome.winner is None:
        decision.reason += (
            " → no candidate both beat the champion on the same recent data and passed the"
            " fairness gate; kept it"
        )
    else:
        decision.new_version = register_for_review(
            outcome, settings, training_set, customers
        ).version
        decision.reason += (
            f" → {outcome.winner.name} passed the gate; v{decision.new_version} is in review"
        )
    decision.champion_after = decision.champion_before
    return _record(decision, settings), outcome
