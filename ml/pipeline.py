"""The training pipeline: validated data → features → candidates → gate → registry.

Each step is a plain function over explicit inputs, so the demo, the retraining job and the
tests run exactly the same code. The Kubernetes CronJob and Job run it through
``mlops pipeline …``; there is no scheduler here (Kubernetes is the engine).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from feast import FeatureStore

from ml import registry
from ml.config import PipelineConfig
from ml.data import CreditDataset
from ml.data.snapshot import frame_sha256, snapshot_sha256
from ml.data.validate import Validated, validate, write_quarantine
from ml.evaluate import GateDecision, gate
from ml.features import store as feature_store
from ml.lineage import Lineage, file_sha256, git_commit
from ml.settings import Settings
from ml.train import CandidateResult, train_candidates

ENTITY_COLUMNS = ["application_id", "customer_id", "event_timestamp", "loan_amount", "term_months"]


@dataclass(frozen=True)
class Ingested:
    tables: dict[str, pd.DataFrame]  # accepted rows only
    results: list[Validated]
    snapshot_sha256: str

    @property
    def received(self) -> int:
        return sum(r.received for r in self.results)

    @property
    def quarantined(self) -> int:
        return sum(len(r.quarantined) for r in self.results)


@dataclass
class TrainingOutcome:
    candidates: list[CandidateResult]
    decisions: dict[str, GateDecision]
    winner: CandidateResult | None
    registered: registry.Registered | None = None
    lineage: Lineage | None = None
    notes: list[str] = field(default_factory=list)


def ingest(dataset: CreditDataset, quarantine_dir: Path) -> Ingested:
    """Validate every raw table; quarantine bad rows; hash what was accepted."""
    results = [validate(name, frame) for name, frame in dataset.tables().items()]
    write_quarantine(results, quarantine_dir).to_csv(quarantine_dir / "counts.csv", index=False)
    tables = {r.table: r.accepted for r in results}
    return Ingested(tables, results, snapshot_sha256(tables))


def build_feature_store(
    repo_dir: Path, ingested: Ingested, environment: str = "embedded"
) -> FeatureStore:
    """Prepare the Feast repo, write the validated sources into it and ``apply``."""
    feature_store.prepare_repo(repo_dir, environment)
    feature_store.ingest(repo_dir, ingested.tables)
    store = feature_store.open_store(repo_dir)
    feature_store.apply(store)
    return store


def labelled_entities(
    applications: pd.DataFrame, known_at: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Applications whose label is known (by ``known_at``), as a Feast entity frame."""
    known = applications["defaulted"].notna()
    if known_at is not None:
        known &= applications["label_timestamp"] <= known_at
    frame = applications.loc[known, [*ENTITY_COLUMNS, "defaulted"]].copy()
    frame["defaulted"] = frame["defaulted"].astype("int64")
    return frame.reset_index(drop=True)


def lineage_for(settings: Settings, ingested: Ingested, training_set: pd.DataFrame) -> Lineage:
    return Lineage(
        snapshot_sha256=ingested.snapshot_sha256,
        training_set_sha256=frame_sha256(training_set),
        feature_service=settings.feature_service,
        git_commit=git_commit(settings.root),
        lock_sha256=file_sha256(settings.lock_file),
        seed=settings.seed,
    )


def train_and_gate(
    training_set: pd.DataFrame,
    settings: Settings,
    config: PipelineConfig,
    lineage: Lineage,
    champion_metrics: dict[str, float] | None = None,
) -> TrainingOutcome:
    """Train every candidate, gate each, and pick the best one that passed (if any)."""
    features = feature_store.model_features(settings.feature_service)
    candidates = train_candidates(training_set, features, config, lineage)
    decisions = {c.name: gate(c.metrics, config.gate, champion_metrics) for c in candidates}
    passed = [c for c in candidates if decisions[c.name].passed]
    winner = max(passed, key=lambda c: c.metrics[config.gate.select_by], default=None)
    return TrainingOutcome(candidates, decisions, winner, lineage=lineage)


def keep_fair_winner(
    outcome: TrainingOutcome,
    training_set: pd.DataFrame,
    customers: pd.DataFrame,
    settings: Settings,
    config: PipelineConfig,
    runners_up: int = 0,
) -> list[CandidateResult]:
    """Make the winner the best gate-passing candidate that also passes the fairness gate.

    Promotion requires both gates; registering a version the fairness gate will refuse only
    gives the reviewers a version nobody may release. The candidates left out are named in
    ``outcome.notes``; with none left, ``outcome.winner`` is None. Returns up to ``runners_up``
    of the next candidates that pass both gates too (challengers for an A/B test), best first.
    """
    from ml.governance.model_card import fairness_gate_of

    features = feature_store.model_features(settings.feature_service)
    passed = [c for c in outcome.candidates if outcome.decisions[c.name].passed]
    fair: list[CandidateResult] = []
    for candidate in sorted(passed, key=lambda c: -c.metrics[config.gate.select_by]):
        if len(fair) > runners_up:
            break
        decision = fairness_gate_of(candidate.model, training_set, customers, features, settings)
        if decision.passed:
            fair.append(candidate)
        else:
            outcome.notes.append(f"{candidate.name} left out: fairness gate {decision.summary()}")
    outcome.winner = fair[0] if fair else None
    return fair[1:]


def record_lineage(
    settings: Settings,
    ingested: Ingested,
    entities: pd.DataFrame,
    training_set: pd.DataFrame,
    outcome: TrainingOutcome,
) -> None:
    """Archive the training set's inputs and attach its manifest to every candidate's run.

    The manifest (feature service and refs, source snapshot hashes, the point-in-time query)
    is what ``mlops features lineage`` and ``mlops features rebuild`` read back.
    """
    from ml.features import lineage as feature_lineage

    manifest = feature_lineage.record_training_set(
        settings.data_dir / "snapshots",
        ingested.tables,
        entities,
        training_set,
        settings.feature_service,
        ingested.snapshot_sha256,
    )
    for candidate in outcome.candidates:
        feature_lineage.log_manifest(manifest, candidate.run_id)


def register_winner(outcome: TrainingOutcome, model_name: str) -> registry.Registered:
    """Register the winner with its lineage and metrics as tags; no alias moves (only the
    governance state machine, ``ml.governance.approvals``, moves aliases)."""
    if outcome.winner is None or outcome.lineage is None:
        raise ValueError("no candidate passed the gate; nothing to register")
    registered = _register(outcome.winner, outcome.lineage, model_name)
    outcome.registered = registered
    return registered


def _register(
    candidate: CandidateResult, lineage: Lineage, model_name: str
) -> registry.Registered:
    tags = {
        **lineage.tags(),
        "candidate": candidate.name,
        **{f"metric.{k}": f"{v:.6f}" for k, v in candidate.metrics.items()},
    }
    return registry.register(candidate.run_id, model_name, tags)


@dataclass(frozen=True)
class FreshTrainingSet:
    ingested: Ingested
    entities: pd.DataFrame
    frame: pd.DataFrame
    lineage: Lineage


def fresh_training_set(settings: Settings, dataset: CreditDataset) -> FreshTrainingSet:
    """Validate → Feast → the point-in-time training set of every labelled application."""
    quarantine_dir = settings.data_dir / "quarantine"
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    ingested = ingest(dataset, quarantine_dir)
    store = build_feature_store(settings.feature_repo_dir, ingested)
    entities = labelled_entities(ingested.tables["applications"])
    frame = feature_store.training_set(store, entities, settings.feature_service)
    return FreshTrainingSet(ingested, entities, frame, lineage_for(settings, ingested, frame))


def training_run(
    settings: Settings, config: PipelineConfig, dataset: CreditDataset
) -> TrainingOutcome:
    """One complete run: fresh training set → candidates → gate → lineage (caller registers)."""
    fresh = fresh_training_set(settings, dataset)
    outcome = train_and_gate(fresh.frame, settings, config, fresh.lineage)
    record_lineage(settings, fresh.ingested, fresh.entities, fresh.frame, outcome)
    return outcome


# --- The cluster's path: the offline store on S3 instead of a regenerated dataset ------------


def offline_training_set(
    settings: Settings, since: pd.Timestamp | None = None
) -> FreshTrainingSet:
    """The point-in-time training set from the cluster's Feast store and offline tables.

    Labels come from the ``applications`` table of the offline store (every ingested batch);
    features come through Feast from the S3 offline folders the feature views read. With
    ``since``, only applications from then on are used (a retrain on recent data).

    Raises:
        UserError: the offline store holds no labelled application yet.
    """
    from ml.errors import UserError
    from ml.ingest import TABLES, read_offline_table
    from ml.objectstore import Bucket

    bucket = Bucket.for_role("features")
    tables = {name: read_offline_table(bucket, name) for name in TABLES}
    applications = tables["applications"]
    if since is not None and len(applications):
        applications = applications[applications["event_timestamp"] >= since]
    entities = labelled_entities(applications) if len(applications) else applications
    if len(entities) == 0:
        raise UserError(
            f"no labelled application in {bucket.url('offline/applications/')}",
            "write an upstream batch to landing/ and run `mlops data ingest` first",
        )
    store = feature_store.open_store(settings.feature_repo_dir)
    frame = feature_store.training_set(store, entities, settings.feature_service)
    ingested = Ingested(tables, [], snapshot_sha256(tables))
    return FreshTrainingSet(ingested, entities, frame, lineage_for(settings, ingested, frame))


def reference_window(
    training_set: pd.DataFrame,
    outcome: TrainingOutcome,
    settings: Settings,
    config: PipelineConfig,
) -> pd.DataFrame:
    """The winner's holdout as the drift monitor's reference: features, score, prediction, label.

    Raises:
        ValueError: no candidate won.
    """
    from ml.train import LABEL, time_split

    if outcome.winner is None:
        raise ValueError("no winner; no reference window")
    features = feature_store.model_features(settings.feature_service)
    _, holdout = time_split(training_set, config.split.holdout_fraction)
    score = outcome.winner.model.predict_proba(holdout[features])[:, 1]
    frame = holdout[[*features, LABEL]].reset_index(drop=True)
    frame["score"] = score
    frame["prediction"] = (score >= config.decision_threshold).astype("int64")
    return frame


def register_for_review(
    outcome: TrainingOutcome,
    settings: Settings,
    training_set: pd.DataFrame,
    customers: pd.DataFrame,
    candidate: CandidateResult | None = None,
) -> registry.Registered:
    """Register the winner (or ``candidate``) as a version, document it, ask for its review.

    No alias moves: only the governance state machine does that. The pipeline's service
    account (``svc-pipeline``, a data scientist in governance.yaml) registers it, so a reviewer
    other than the pipeline must approve it. The model card (with the fairness gate a promotion
    requires) is written here, by the run that has the training set in hand: in the cluster
    nothing else keeps that data.
    """
    from ml.governance import approvals
    from ml.governance.model_card import write_model_card

    model_name = settings.model_name
    if candidate is None:
        registered = register_winner(outcome, model_name)
    else:
        assert outcome.lineage is not None, "train_and_gate sets the lineage"
        registered = _register(candidate, outcome.lineage, model_name)
    version = registered.version
    approvals.register_candidate(model_name, version, user=PIPELINE_USER, role=PIPELINE_ROLE)
    write_model_card(
        model_name,
        version,
        training_set=training_set,
        customers=customers,
        features=feature_store.model_features(settings.feature_service),
        out_dir=settings.model_card_dir(version),
        settings=settings,
    )
    approvals.request_review(model_name, version, user=PIPELINE_USER, role=PIPELINE_ROLE)
    return registered


PIPELINE_USER = "svc-pipeline"
PIPELINE_ROLE = "data_scientist"
