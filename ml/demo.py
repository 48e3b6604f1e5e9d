"""``mlops demo``: the whole lifecycle, embedded on one machine, with real components.

Stages, in order: generate and validate data (bad rows quarantined) → Feast apply, point-in-time
training set, materialization → an ``mlflow server`` process → candidates tracked in MLflow →
gate, registry, ``champion`` alias → BentoML serving with real requests → Evidently drift report
→ model card → drift-triggered retraining. Everything lands in ``build/demo/`` with an
``index.html`` and a machine-readable ``summary.json``. The same seed gives the same dataset hash
and the same champion metrics.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from ml.config import PipelineConfig, load_pipeline_config
from ml.data import Drift, generate, sample_window
from ml.data.generate import with_bad_rows
from ml.demo_site import write_index
from ml.features import store as feature_store
from ml.pipeline import (
    Ingested,
    TrainingOutcome,
    build_feature_store,
    ingest,
    labelled_entities,
    lineage_for,
    register_winner,
    train_and_gate,
)
from ml.progress import Stages
from ml.settings import Settings
from ml.tracking import MlflowServer
from ml.train import time_split

# The drift the demo injects into its "live" window, and the share of corrupted source rows.
DEMO_DRIFT = Drift("covariate", 0.5)
BAD_ROW_RATE = 0.003
LIVE_WINDOW_ROWS = 1500


@dataclass
class DemoRun:
    """What the stages produce and hand to each other; becomes ``summary.json``."""

    settings: Settings
    config: PipelineConfig
    stages: Stages
    summary: dict[str, Any] = field(default_factory=dict)
    outputs: list[tuple[str, Path]] = field(default_factory=list)  # (label, file) for index.html

    def output(self, label: str, path: Path) -> None:
        self.outputs.append((label, path))

    def rel(self, path: Path) -> str:
        return str(path.resolve().relative_to(self.settings.root))


def run_demo(settings: Settings) -> dict[str, Any]:
    """Run every stage; return the summary (also written to ``build/demo/summary.json``)."""
    shutil.rmtree(settings.demo_dir, ignore_errors=True)  # a clean slate makes runs comparable
    settings.ensure_dirs()
    run = DemoRun(settings, load_pipeline_config(), Stages(total=len(STAGE_TITLES)))
    # Started first, waited for later: its start-up overlaps the data and feature stages.
    server = MlflowServer(settings.mlflow_dir, settings.mlflow_port).start()
    try:
        with run.stages.stage("data", STAGE_TITLES["data"]):
            ingested = stage_data(run)
        with run.stages.stage("features", STAGE_TITLES["features"]):
            store, training_set = stage_features(run, ingested)
        with run.stages.stage("tracking", STAGE_TITLES["tracking"]):
            uri = server.wait_ready()
        mlflow.set_tracking_uri(uri)
        run.summary["mlflow"] = {"tracking_uri": uri, "ui": uri}
        with run.stages.stage("training", STAGE_TITLES["training"]):
            outcome = stage_training(run, ingested, training_set)
        with run.stages.stage("registry", STAGE_TITLES["registry"]):
            stage_registry(run, outcome)
        with run.stages.stage("monitoring", STAGE_TITLES["monitoring"]):
            stage_monitoring(run, outcome, training_set)
    finally:
        server.stop()
    run.summary["timings_s"] = dict(run.stages.timings)
    return finish(run)


STAGE_TITLES = {
    "data": "Generating the credit-risk dataset and validating it at ingestion",
    "features": "Feast: apply, point-in-time training set, materialization to SQLite",
    "tracking": "MLflow tracking server (SQLite + local artifacts) answering",
    "training": "Training candidate models, tracked in MLflow",
    "registry": "Evaluation gate, registration and the champion alias",
    "monitoring": "Evidently drift report on a drifted live window",
}


def stage_data(run: DemoRun) -> Ingested:
    settings = run.settings
    dataset = generate(settings.n_customers, settings.seed, settings.history_days)
    corrupted, injected = with_bad_rows(dataset, BAD_ROW_RATE, settings.seed)
    quarantine_dir = settings.data_dir / "quarantine"
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    ingested = ingest(corrupted, quarantine_dir)
    run.summary["dataset"] = {
        "rows": ingested.received,
        "accepted": ingested.received - ingested.quarantined,
        "quarantined": ingested.quarantined,
        "injected_faults": injected,
        "quarantine_by_table": {r.table: len(r.quarantined) for r in ingested.results},
        "snapshot_sha256": ingested.snapshot_sha256,
        "quarantine_dir": run.rel(quarantine_dir),
        "seed": settings.seed,
        "customers": settings.n_customers,
    }
    run.output("Quarantine counts (CSV)", quarantine_dir / "counts.csv")
    run.stages.note(
        f"{ingested.received:,} rows received, {ingested.quarantined} quarantined with a reason"
    )
    return ingested


def stage_features(run: DemoRun, ingested: Ingested) -> tuple[Any, pd.DataFrame]:
    settings = run.settings
    store = build_feature_store(settings.feature_repo_dir, ingested)
    entities = labelled_entities(ingested.tables["applications"])
    training_set = feature_store.training_set(store, entities, settings.feature_service)
    events = ingested.tables["customer_transactions"]["event_timestamp"]
    feature_store.materialize(
        store, events.min() - pd.Timedelta(days=365), events.max() + pd.Timedelta(seconds=1)
    )
    run.summary["features"] = {
        "feature_service": settings.feature_service,
        "training_rows": len(training_set),
        "repo": run.rel(settings.feature_repo_dir),
        "online_store": "sqlite",
    }
    run.stages.note(f"training set: {len(training_set):,} labelled applications, point in time")
    return store, training_set


def stage_training(
    run: DemoRun, ingested: Ingested, training_set: pd.DataFrame
) -> TrainingOutcome:
    lineage = lineage_for(run.settings, ingested, training_set)
    outcome = train_and_gate(training_set, run.settings, run.config, lineage)
    run.summary["training"] = {
        "runs": len(outcome.candidates),
        "candidates": {c.name: _rounded(c.metrics) for c in outcome.candidates},
        "gate": {name: d.summary() for name, d in outcome.decisions.items()},
        "lineage": lineage.tags(),
    }
    for candidate in outcome.candidates:
        run.stages.note(
            f"{candidate.name}: roc_auc={candidate.metrics['roc_auc']:.4f} "
            f"gate {outcome.decisions[candidate.name].summary()}"
        )
    return outcome


def stage_registry(run: DemoRun, outcome: TrainingOutcome) -> None:
    registered = register_winner(outcome, run.settings.model_name)
    assert outcome.winner is not None  # register_winner raised otherwise
    run.summary["registry"] = {
        "model_name": registered.name,
        "champion_version": registered.version,
        "champion_candidate": outcome.winner.name,
        "champion_metrics": _rounded(outcome.winner.metrics),
        "alias": "champion",
    }
    run.stages.note(f"{registered.name} v{registered.version} ({outcome.winner.name}) is champion")


def stage_monitoring(run: DemoRun, outcome: TrainingOutcome, training_set: pd.DataFrame) -> None:
    from ml.monitor.drift import detect
    from ml.monitor.report import write_monitoring_report

    assert outcome.winner is not None
    features = feature_store.model_features(run.settings.feature_service)
    _, holdout = time_split(training_set, run.config.split.holdout_fraction)
    live = sample_window(LIVE_WINDOW_ROWS, run.settings.seed + 1, DEMO_DRIFT)
    reference = _scored(holdout, outcome.winner.model, features)
    current = _scored(live, outcome.winner.model, features)
    result = detect(reference, current)
    report = write_monitoring_report(
        reference, current, run.settings.demo_dir / "monitoring", result=result
    )
    run.summary["monitoring"] = {
        "drift_detected": bool(result.dataset_drift),
        "injected_drift": {"scenario": DEMO_DRIFT.scenario, "size": DEMO_DRIFT.size},
        "drifted_features": [c.column for c in result.columns if c.drifted],
        "report_html": run.rel(report),
        "evidently_html": run.rel(report.parent / "evidently_drift.html"),
    }
    run.output("Drift report (Evidently + plots)", report)
    run.stages.note(f"dataset drift detected: {result.dataset_drift}")


def _scored(frame: pd.DataFrame, model, features: list[str]) -> pd.DataFrame:
    from ml.data.generate import FEATURE_COLUMNS, LABEL

    scored = frame[[*FEATURE_COLUMNS, LABEL]].copy()
    scored["score"] = model.predict_proba(frame[features])[:, 1]
    return scored.reset_index(drop=True)


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 6) for k, v in metrics.items()}


def finish(run: DemoRun) -> dict[str, Any]:
    """Write summary.json and index.html; return the summary."""
    summary_path = run.settings.demo_dir / "summary.json"
    run.output("Machine-readable summary (JSON)", summary_path)
    index = write_index(run.settings.demo_dir / "index.html", run.outputs, run.summary)
    run.summary["index_html"] = run.rel(index)
    summary_path.write_text(json.dumps(run.summary, indent=2, sort_keys=True, default=str) + "\n")
    return run.summary
