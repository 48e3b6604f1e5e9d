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
import operator
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from ml.config import PipelineConfig, load_pipeline_config
from ml.data import Drift, generate, sample_window
from ml.data.generate import DEFAULT_START, with_bad_rows
from ml.data.snapshot import snapshot_sha256
from ml.demo_site import write_index
from ml.features import store as feature_store
from ml.monitor.drift import DriftResult
from ml.pipeline import (
    Ingested,
    TrainingOutcome,
    build_feature_store,
    ingest,
    labelled_entities,
    lineage_for,
    record_lineage,
    train_and_gate,
)
from ml.progress import Stages
from ml.retrain import retrain, trigger
from ml.settings import Settings
from ml.tracking import MlflowServer
from ml.train import time_split

# The drift the demo injects into its "live" window, and the share of corrupted source rows.
DEMO_DRIFT = Drift("covariate", 0.5)
BAD_ROW_RATE = 0.003
LIVE_WINDOW_ROWS = 1500
FRESH_ID_OFFSET = 1_000_000  # ids of the fresh batch's customers and applications


@dataclass
class DemoRun:
    """What the stages produce and hand to each other; becomes ``summary.json``."""

    settings: Settings
    config: PipelineConfig
    stages: Stages
    summary: dict[str, Any] = field(default_factory=dict)
    outputs: list[tuple[str, Path]] = field(default_factory=list)  # (label, file) for index.html
    versions: dict[str, Any] = field(default_factory=dict)  # registered version -> candidate
    variants: list[str] = field(default_factory=list)  # approved runners-up, best first
    self_approval: str = "not attempted"

    def output(self, label: str, path: Path) -> None:
        self.outputs.append((label, path))

    def rel(self, path: Path) -> str:
        """``path`` relative to the repository root (absolute if the build dir is elsewhere)."""
        path = path.resolve()
        return str(
            path.relative_to(self.settings.root)
            if path.is_relative_to(self.settings.root)
            else path
        )


def run_demo(settings: Settings) -> dict[str, Any]:
    """Run every stage; return the summary (also written to ``build/demo/summary.json``)."""
    # A clean slate makes runs comparable: the registry starts empty, so the audit log that
    # refers to its versions starts empty too.
    shutil.rmtree(settings.demo_dir, ignore_errors=True)
    settings.audit_log.unlink(missing_ok=True)
    settings.ensure_dirs()
    run = DemoRun(settings, load_pipeline_config(), Stages(total=len(STAGE_TITLES)))
    # Started first, waited for later: its start-up overlaps the data and feature stages.
    server = MlflowServer(settings.mlflow_dir, settings.mlflow_port).start()
    try:
        with run.stages.stage("data", STAGE_TITLES["data"]):
            ingested = stage_data(run)
        with run.stages.stage("features", STAGE_TITLES["features"]):
            entities, training_set = stage_features(run, ingested)
        with run.stages.stage("tracking", STAGE_TITLES["tracking"]):
            uri = server.wait_ready()
        mlflow.set_tracking_uri(uri)
        run.summary["mlflow"] = {"tracking_uri": uri, "ui": uri}
        with run.stages.stage("training", STAGE_TITLES["training"]):
            outcome = stage_training(run, ingested, entities, training_set)
        with run.stages.stage("registry", STAGE_TITLES["registry"]):
            stage_registry(run, outcome)
        with run.stages.stage("governance", STAGE_TITLES["governance"]):
            stage_governance(run, training_set, ingested.tables["customers"])
        with run.stages.stage("serving", STAGE_TITLES["serving"]):
            stage_serving(run, training_set, ingested.tables["applications"])
        with run.stages.stage("monitoring", STAGE_TITLES["monitoring"]):
            drift = stage_monitoring(run, training_set)
        with run.stages.stage("retraining", STAGE_TITLES["retraining"]):
            stage_retraining(run, ingested, drift)
    finally:
        server.stop()
    run.summary["timings_s"] = dict(run.stages.timings)
    return finish(run)


STAGE_TITLES = {
    "data": "Generating the credit-risk dataset and validating it at ingestion",
    "features": "Feast: apply, point-in-time training set, materialization to SQLite",
    "tracking": "MLflow tracking server (SQLite + local artifacts) answering",
    "training": "Training candidate models, tracked in MLflow",
    "registry": "Registration of every candidate that passed the performance gate",
    "governance": "Model cards, fairness gate, reviews by role; the best fair model → production",
    "serving": "BentoML: champion vs challenger (A/B) with a shadow; good and malformed requests",
    "monitoring": "Evidently drift report on a drifted live window",
    "retraining": "Closed loop: drift triggers retraining on fresh data, gated vs the champion",
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


def stage_features(run: DemoRun, ingested: Ingested) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    return entities, training_set


def stage_training(
    run: DemoRun, ingested: Ingested, entities: pd.DataFrame, training_set: pd.DataFrame
) -> TrainingOutcome:
    lineage = lineage_for(run.settings, ingested, training_set)
    outcome = train_and_gate(training_set, run.settings, run.config, lineage)
    record_lineage(run.settings, ingested, entities, training_set, outcome)
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
    """Register every candidate that passed the performance gate, best first, as a version."""
    from ml import registry

    passed = [c for c in outcome.candidates if outcome.decisions[c.name].passed]
    ranked = sorted(passed, key=lambda c: c.metrics[run.config.gate.select_by], reverse=True)
    lineage = outcome.lineage.tags() if outcome.lineage else {}
    run.versions = {
        registry.register(
            c.run_id, run.settings.model_name, {**lineage, "candidate": c.name}
        ).version: c
        for c in ranked
    }
    run.stages.note("registered " + ", ".join(f"v{v} ({c.name})" for v, c in run.versions.items()))


def stage_governance(run: DemoRun, training_set: pd.DataFrame, customers: pd.DataFrame) -> None:
    """Each version gets a model card and a review; the best one that passes goes to production.

    A version whose card fails the fairness gate is rejected by the reviewer, with the reason,
    and the next one is reviewed. The runners-up that pass become challenger and shadow.
    """
    from ml.errors import UserError
    from ml.governance import approvals

    name, flow = run.settings.model_name, {"audit_path": run.settings.audit_log}
    approved, rejected, cards = [], {}, {}
    for version, candidate in run.versions.items():
        # dave is both data scientist and reviewer: he registers, so he may not approve.
        approvals.register_candidate(name, version, user="dave", role="data_scientist", **flow)
        cards[version] = card = _model_card(run, version, training_set, customers)
        approvals.request_review(name, version, user="dave", role="data_scientist", **flow)
        if not card.fairness_passed:
            reason = "fairness gate failed: " + "; ".join(card.fairness_reasons)
            approvals.reject(name, version, user="bob", role="reviewer", reason=reason, **flow)
            rejected[version] = reason
            run.stages.note(f"v{version} ({candidate.name}) rejected by bob: {reason[:120]}")
            continue
        if not approved:  # the first approval attempt shows separation of duties
            try:
                approvals.approve(name, version, user="dave", role="reviewer", **flow)
                run.self_approval = "allowed"
            except UserError as refused:
                run.self_approval = f"refused: {refused.what}"
        approvals.approve(
            name, version, user="bob", role="reviewer", comment="card reviewed", **flow
        )
        approved.append(version)
    if not approved:
        raise UserError(
            "no candidate passed both the performance and the fairness gate",
            "see the model cards under build/demo/governance and the gates in the config",
        )
    champion = approved[0]
    approvals.promote_to_production(name, champion, user="carol", role="release_manager", **flow)
    cards[champion] = _model_card(run, champion, training_set, customers)  # with its history
    run.variants = approved[1:3]
    winner = run.versions[champion]
    run.summary["registry"] = {
        "model_name": name,
        "champion_version": champion,
        "champion_candidate": winner.name,
        "champion_metrics": _rounded(winner.metrics),
        "alias": "champion",
        "versions": {v: c.name for v, c in run.versions.items()},
    }
    run.summary["governance"] = {
        "model_card": run.rel(cards[champion].md),
        "model_card_html": run.rel(cards[champion].html),
        "model_cards": {v: run.rel(card.html) for v, card in cards.items()},
        "fairness_passed": cards[champion].fairness_passed,
        "fairness_notes": cards[champion].fairness_reasons,
        "approved": approved,
        "rejected": rejected,
        "approval_status": {v.version: v.status for v in approvals.status(name)},
        "self_approval": run.self_approval,
        "audit_log": run.rel(run.settings.audit_log),
    }
    for version, card in cards.items():
        run.output(f"Model card v{version} ({run.versions[version].name})", card.html)
    for plot in cards[champion].plots:
        run.output(f"Model card plot: {plot.stem}", plot)
    run.stages.note(f"v{champion} ({winner.name}): approved (bob) → production (carol), champion")
    run.stages.note(f"self-approval {run.self_approval}")


def _model_card(run: DemoRun, version: str, training_set: pd.DataFrame, customers: pd.DataFrame):
    from ml.governance.model_card import write_model_card

    return write_model_card(
        run.settings.model_name,
        version,
        training_set=training_set,
        customers=customers,
        features=feature_store.model_features(run.settings.feature_service),
        out_dir=run.settings.demo_dir / "governance" / f"v{version}",  # one card per version
        settings=run.settings,
        audit_path=run.settings.audit_log,
    )


def stage_serving(run: DemoRun, training_set: pd.DataFrame, applications: pd.DataFrame) -> None:
    """A real HTTP server, real requests, and the experiment read back from its log."""
    import httpx

    from ml.serve.experiment import analyze_experiment
    from ml.serve.server import start_server
    from ml.serve.traffic import TrafficPolicy

    settings = run.settings
    policy = TrafficPolicy(
        salt=f"demo-{settings.seed}",
        variants=_live_variants(run.variants[:1]),
        shadows=[{"name": "shadow", "model": v} for v in run.variants[1:2]],
    )
    for role, version in zip(("challenger", "shadow"), run.variants, strict=False):
        mlflow.MlflowClient().set_registered_model_alias(settings.model_name, role, version)
        run.stages.note(f"{role}: v{version} ({run.versions[version].name}), approved")
    log = settings.demo_dir / "serving" / "predictions.jsonl"
    _, holdout = time_split(training_set, run.config.split.holdout_fraction)
    with start_server(settings, policy, log_path=log) as url, httpx.Client(base_url=url) as client:
        good = _send_applications(client, holdout)
        bad = _send_malformed(client, int(holdout["customer_id"].iloc[0]))
        _wait_for_log(log, expected_shadows=good["requests"])
    codes = [*good["codes"], *bad]
    report = analyze_experiment(
        log,
        applications[["application_id", "defaulted"]].dropna(),
        settings.demo_dir / "experiment",
    )
    run.summary["serving"] = {
        "requests": len(codes),
        "ok_2xx": sum(200 <= c < 300 for c in codes),
        "rejected_4xx": sum(400 <= c < 500 for c in codes),
        "errors_5xx": sum(c >= 500 for c in codes),
        "client_latency_ms": good["latency_ms"],
        "policy": policy.model_dump(mode="json"),
        "prediction_log": run.rel(log),
        "experiment": report.to_dict(),
    }
    run.output("A/B experiment report", settings.demo_dir / "experiment" / "experiment.md")
    run.output("A/B experiment plot", settings.demo_dir / "experiment" / "experiment.png")
    run.output("Prediction log (JSON Lines)", log)
    serving = run.summary["serving"]
    run.stages.note(
        f"{serving['requests']} requests: {serving['ok_2xx']} answered, "
        f"{serving['rejected_4xx']} rejected (4xx), {serving['errors_5xx']} server errors"
    )


def _live_variants(challengers: list[str]) -> dict[str, dict[str, Any]]:
    """A 50/50 split with the challenger when there is one, else all traffic to the champion."""
    variants = {"champion": {"model": "champion", "weight": 1.0}}
    for version in challengers:
        variants = {name: {**spec, "weight": 0.5} for name, spec in variants.items()}
        variants["challenger"] = {"model": version, "weight": 0.5}
    return variants


def _send_applications(client, holdout: pd.DataFrame) -> dict[str, Any]:
    import time

    codes, latencies = [], []
    for row in holdout.itertuples():
        payload = {
            "customer_id": int(row.customer_id),
            "loan_amount": float(row.loan_amount),
            "term_months": int(row.term_months),
            "application_id": int(row.application_id),
        }
        started = time.perf_counter()
        codes.append(client.post("/predict", json=payload).status_code)
        latencies.append((time.perf_counter() - started) * 1000)
    quantiles = pd.Series(latencies).quantile([0.5, 0.99])
    return {
        "requests": len(codes),
        "codes": codes,
        "latency_ms": {"p50": round(quantiles[0.5], 2), "p99": round(quantiles[0.99], 2)},
    }


# What real clients get wrong; each must be answered 4xx with the field named, never 5xx.
MALFORMED: list[tuple[str, Any]] = [
    ("missing field", {"customer_id": 1001, "loan_amount": 5000.0}),
    ("wrong type", {"customer_id": "abc", "loan_amount": 5000.0, "term_months": 36}),
    ("negative amount", {"customer_id": 1001, "loan_amount": -5.0, "term_months": 36}),
    ("unknown term", {"customer_id": 1001, "loan_amount": 5000.0, "term_months": 7}),
    ("unknown customer", {"customer_id": 987654321, "loan_amount": 5000.0, "term_months": 36}),
    ("extra field", {"customer_id": 1001, "loan_amount": 1.0, "term_months": 36, "x": 1}),
]


def _send_malformed(client, known_customer: int) -> list[int]:
    codes = []
    for _, payload in MALFORMED:
        body = {**payload, "customer_id": payload["customer_id"]}
        codes.append(client.post("/predict", json=body).status_code)
    raw = ['{"customer_id": 1001, "loan_amount": NaN, "term_months": 36}', "{not json", ""]
    for content in raw:
        headers = {"content-type": "application/json"}
        codes.append(client.post("/predict", content=content, headers=headers).status_code)
    oversized = [
        {"customer_id": known_customer, "loan_amount": 1000.0, "term_months": 12}
    ] * 10_000
    codes.append(client.post("/predict_batch", json={"requests": oversized}).status_code)
    return codes


def _wait_for_log(log: Path, expected_shadows: int, timeout_s: float = 15.0) -> None:
    """The log and the shadows flush in the background; wait until they have caught up."""
    import time

    from ml.serve.prediction_log import read_prediction_log

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if log.exists() and read_prediction_log(log)["shadow"].sum() >= expected_shadows:
            return
        time.sleep(0.25)


def stage_monitoring(run: DemoRun, training_set: pd.DataFrame) -> DriftResult:
    from ml.monitor.drift import detect
    from ml.monitor.report import write_monitoring_report

    champion = run.versions[run.summary["registry"]["champion_version"]]
    features = feature_store.model_features(run.settings.feature_service)
    _, holdout = time_split(training_set, run.config.split.holdout_fraction)
    live = sample_window(LIVE_WINDOW_ROWS, run.settings.seed + 1, DEMO_DRIFT)
    reference = _scored(holdout, champion.model, features)
    current = _scored(live, champion.model, features)
    result = detect(reference, current)
    exposition = write_exposition(result, run.settings.demo_dir / "monitoring" / "metrics.prom")
    report = write_monitoring_report(
        reference, current, run.settings.demo_dir / "monitoring", result=result
    )
    run.summary["monitoring"] = {
        "drift_detected": bool(result.drift_detected),
        "dataset_drift": bool(result.dataset_drift),
        "prediction_drift": bool(result.prediction_drift),
        "alerts_would_fire": alerts_that_fire(exposition.read_text()),
        "metrics_exposition": run.rel(exposition),
        "injected_drift": {"scenario": DEMO_DRIFT.scenario, "size": DEMO_DRIFT.size},
        "drifted_features": [c.column for c in result.columns if c.drifted],
        "report_html": run.rel(report),
        "evidently_html": run.rel(report.parent / "evidently_drift.html"),
    }
    run.output("Drift report (Evidently + plots)", report)
    run.output("Evidently's own drift report", report.parent / "evidently_drift.html")
    run.output("Monitor metrics as pushed to Prometheus", exposition)
    run.stages.note(result.verdict())
    for alert in run.summary["monitoring"]["alerts_would_fire"]:
        run.stages.note(f"alert that would fire: {alert['alert']} ({alert['severity']})")
    return result


def stage_retraining(run: DemoRun, ingested: Ingested, drift: DriftResult) -> None:
    """A fresh batch from the drifted period goes through validation and Feast; retrain."""
    settings = run.settings
    fresh = generate(
        settings.n_customers // 2,
        settings.seed + 2,
        days=180,
        start=DEFAULT_START + pd.Timedelta(days=settings.history_days - 30),
        drift=DEMO_DRIFT,
        first_customer_id=FRESH_ID_OFFSET,
        first_application_id=FRESH_ID_OFFSET,
    )
    batch_dir = settings.data_dir / "quarantine" / "batch-2"
    batch_dir.mkdir(parents=True, exist_ok=True)
    fresh_batch = ingest(fresh, batch_dir)
    combined = combine(ingested, fresh_batch)
    store = build_feature_store(settings.feature_repo_dir, combined)
    entities = labelled_entities(fresh_batch.tables["applications"])
    training_set = feature_store.training_set(store, entities, settings.feature_service)
    lineage = lineage_for(settings, combined, training_set)
    decision = retrain(trigger(drift, None), training_set, settings, run.config, lineage)
    run.summary["retraining"] = {
        **decision.to_dict(),
        "fresh_training_rows": len(training_set),
        "audit_log": run.rel(settings.audit_log),
    }
    if decision.new_version is not None:  # every registered version is documented
        card = _model_card(
            run, decision.new_version, training_set, fresh_batch.tables["customers"]
        )
        run.summary["retraining"]["model_card"] = run.rel(card.html)
        run.output(f"Model card v{decision.new_version} (retrained)", card.html)
    run.output("Audit log (hash-chained JSON Lines)", settings.audit_log)
    run.stages.note(decision.reason)


def write_exposition(result: DriftResult, path: Path) -> Path:
    """The monitor's gauges in Prometheus' text format, exactly as a scrape or push sends."""
    from prometheus_client import generate_latest

    from ml.metrics import registry
    from ml.monitor.push import set_gauges

    set_gauges(result)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(generate_latest(registry()[0]))
    return path


_SIMPLE_RULE = re.compile(r"^max\((\w+)\)\s*(==|>=|>|<=|<)\s*([0-9.]+)$")
_OPERATORS = {
    "==": operator.eq,
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


def alerts_that_fire(exposition: str) -> list[dict[str, Any]]:
    """The deployed alert rules of the form ``max(metric) OP value`` that these values trip.

    Only that simple form is evaluated here (the drift alerts use it); every rule is tested
    properly with promtool in the test suite.
    """
    from prometheus_client.parser import text_string_to_metric_families

    from components.alerting import rule_groups

    values: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            values[sample.name] = max(values.get(sample.name, float("-inf")), sample.value)
    firing = []
    for rule in (r for group in rule_groups() for r in group["rules"] if "alert" in r):
        match = _SIMPLE_RULE.match(rule["expr"].strip())
        if (
            match
            and match[1] in values
            and _OPERATORS[match[2]](values[match[1]], float(match[3]))
        ):
            firing.append(
                {
                    "alert": rule["alert"],
                    "severity": rule["labels"]["severity"],
                    "expr": rule["expr"],
                }
            )
    return firing


def combine(old: Ingested, new: Ingested) -> Ingested:
    """Both batches' accepted rows as one snapshot (the feature store's sources grow)."""
    tables = {
        name: pd.concat([old.tables[name], new.tables[name]], ignore_index=True)
        for name in old.tables
    }
    return Ingested(tables, [*old.results, *new.results], snapshot_sha256(tables))


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
