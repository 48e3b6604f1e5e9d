"""``mlops demo``: the whole lifecycle, embedded on one machine, as the cluster runs it.

The demo starts the embedded platform (:mod:`ml.embedded`: an MLflow server and an S3-compatible
object store on loopback) and runs every lifecycle step as the command its Job or CronJob runs
in the cluster (:mod:`contract.commands`), in a subprocess with the environment a pod gets:
``mlops data ingest`` → ``feast apply`` → ``mlops features materialize`` → ``mlops pipeline
train`` → reviews with ``mlops governance`` → ``bentoml serve`` (A/B with a shadow, prediction
logs shipped to the object store) → ``mlops monitor drift`` on those logs → ``mlops pipeline
retrain`` → review and promotion, picked up by the running server. The demo's own code plays
the parts outside the platform (the upstream system, the API clients, the people) and writes
the report: everything lands in ``build/demo/`` with an ``index.html`` and a machine-readable
``summary.json``. The same seed on the same day gives the same data and the same champion.
"""

from __future__ import annotations

import json
import operator
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from contract import commands
from contract import objectstore as layout
from ml.data import Drift
from ml.data.generate import with_bad_rows
from ml.demo_site import write_index
from ml.embedded import EmbeddedPlatform
from ml.errors import UserError
from ml.progress import Stages
from ml.serve.clients import scoring_requests
from ml.settings import Settings

# The drift injected into live traffic, the retraining batch's concept drift, bad source rows.
DRIFT_FACTOR = 3.0  # loan amounts of the drifted stream, relative to the applications'
RETRAIN_DRIFT = Drift("concept", 0.5)
BAD_ROW_RATE = 0.003
AB_REQUESTS, DRIFTED_REQUESTS = 800, 1500
REVIEWER, RELEASE_MANAGER = ("bob", "reviewer"), ("carol", "release_manager")
SHIP_EVERY_S = "2"  # prediction-log batches close every 2 s here (30 s in the cluster)


@dataclass
class DemoRun:
    """What the stages produce and hand to each other; becomes ``summary.json``."""

    settings: Settings
    platform: EmbeddedPlatform
    stages: Stages
    summary: dict[str, Any] = field(default_factory=dict)
    outputs: list[tuple[str, Path]] = field(default_factory=list)  # (label, file) for index.html
    versions: dict[str, str] = field(default_factory=dict)  # registered version -> candidate
    applications: pd.DataFrame | None = None  # batch 1's, as the upstream system sent them
    answered: int = 0  # live predictions answered, to check against the shipped log
    marks: dict[str, float] = field(default_factory=dict)

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

    def step(self, name: str, *command: str) -> str:
        """Run one lifecycle step's command as its Job would; echo its last line."""
        started = time.monotonic()
        output = self.platform.run(name, command)
        self.summary.setdefault("steps_s", {})[name] = round(time.monotonic() - started, 1)
        lines = [line for line in output.splitlines() if line.strip()]
        if lines:
            self.stages.note(f"$ {' '.join(command[:3])} … → {lines[-1][:110]}")
        return output

    def json_of(self, name: str) -> Path:
        return self.settings.demo_dir / "steps" / f"{name}.json"

    def act(self, action: str, version: str, who: tuple[str, str], **details: str) -> None:
        """A person's governance action (``mlops governance <action>`` does the same call).

        People are not Jobs: like the e2e's reviewers, they act through the governance state
        machine with their own identity; here in this process, to spare a CLI start per click.
        """
        from ml.governance import approvals

        user, role = who
        transition = getattr(approvals, ACTIONS[action])(
            self.settings.model_name, version, user=user, role=role, **details
        )
        self.stages.note(
            f"{user} ({role}) {action} v{version}: {transition.from_status} → "
            f"{transition.to_status}"
        )


# What the people do, as the state machine's functions (the CLI's commands call the same).
ACTIONS = {"approve": "approve", "promote": "promote_to_production", "release": "release"}


def run_demo(settings: Settings) -> dict[str, Any]:
    """Run every stage; return the summary (also written to ``build/demo/summary.json``)."""
    from ml.serve.server import free_port, start_server

    # A clean slate makes runs comparable: the registry and the object store start empty.
    shutil.rmtree(settings.demo_dir, ignore_errors=True)
    settings.audit_log.unlink(missing_ok=True)
    settings.ensure_dirs()
    platform = EmbeddedPlatform.start(settings, free_port)
    run = DemoRun(settings, platform, Stages(total=len(STAGE_TITLES)))
    try:
        with run.stages.stage("platform", STAGE_TITLES["platform"]):
            uri = platform.wait_ready()
            platform.use_here()
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            run.summary["mlflow"] = {"tracking_uri": uri, "ui": uri}
            run.summary["platform"] = {"object_store": platform.object_store_url,
                                       "buckets": platform.buckets}  # fmt: skip
        for name in ("data", "features", "training", "governance"):
            with run.stages.stage(name, STAGE_TITLES[name]):
                STAGES[name](run)
        server_env = {**platform.env(), "MLOPS_LOG_BATCH_S": SHIP_EVERY_S}
        # The demo's own MLflow server, whatever MLOPS_MLFLOW_TRACKING_URI this process has.
        serving = settings.model_copy(update={"mlflow_tracking_uri": uri})
        with start_server(serving, serving_policy(run), env=server_env) as url:
            for name in ("serving", "monitoring", "retraining"):
                with run.stages.stage(name, STAGE_TITLES[name]):
                    STAGES[name](run, url)
        logs_complete(run)
        collect_audit_log(run)
    finally:
        platform.stop()
    run.summary["timings_s"] = dict(run.stages.timings)
    return finish(run)


STAGE_TITLES = {
    "platform": "Embedded platform: MLflow server and an S3-compatible object store on loopback",
    "data": "Upstream batch → `mlops data ingest`: validated, bad rows quarantined",
    "features": "`feast apply`, `mlops features materialize`: offline store → online store",
    "training": "`mlops pipeline train`: candidates tracked in MLflow, gated, registered",
    "governance": "Reviews by role (`mlops governance`): approve, promote, release to A/B",
    "serving": "`bentoml serve`: champion vs challenger (A/B) with a shadow; bad requests",
    "monitoring": "Drifted live traffic → `mlops monitor drift` on the shipped logs",
    "retraining": "New batch → `mlops pipeline retrain` → review → served without a restart",
}


# --- data and features ---------------------------------------------------------------------


def stage_data(run: DemoRun) -> None:
    """The upstream system delivers batch 1 (with some corrupted rows); the ingest Job files it."""
    from ml.ingest import upstream_batch

    settings = run.settings
    dataset = upstream_batch(
        1, pd.Timestamp.now(tz="UTC"), days=settings.history_days,
        n_customers=settings.n_customers, seed=settings.seed,
    )  # fmt: skip
    corrupted, injected = with_bad_rows(dataset, BAD_ROW_RATE, settings.seed)
    run.applications = dataset.applications
    counts = deliver_and_ingest(run, "b0001", corrupted.tables(), "ingest-batch-1")
    run.summary["dataset"] = {
        "rows": sum(c["received"] for c in counts),
        "accepted": sum(c["accepted"] for c in counts),
        "quarantined": sum(c["quarantined"] for c in counts),
        "injected_faults": injected,
        "quarantine_by_table": {c["table"]: c["quarantined"] for c in counts},
        "quarantine": layout.s3_url(run.platform.buckets["features"], layout.QUARANTINE_PREFIX),
        "snapshot_sha256": _offline_snapshot_sha256(),
        "seed": settings.seed,
        "customers": settings.n_customers,
    }
    counts_csv = settings.demo_dir / "data" / "quarantine_counts.csv"
    counts_csv.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(counts).to_csv(counts_csv, index=False)
    run.output("Quarantine counts (CSV)", counts_csv)


def deliver_and_ingest(run: DemoRun, batch: str, tables: dict, step: str) -> list[dict]:
    """Upstream writes ``tables`` to landing/; the ingest step validates and files them."""
    from ml.ingest import write_landing_batch
    from ml.objectstore import Bucket

    write_landing_batch(Bucket.for_role("features"), batch, tables)
    run.step(step, *commands.INGEST, "--json", str(run.json_of(step)))
    return json.loads(run.json_of(step).read_text())


def _offline_snapshot_sha256() -> str:
    from ml.data.snapshot import snapshot_sha256
    from ml.ingest import TABLES, read_offline_table
    from ml.objectstore import Bucket

    bucket = Bucket.for_role("features")
    return snapshot_sha256({name: read_offline_table(bucket, name) for name in TABLES})


def stage_features(run: DemoRun) -> None:
    platform = run.platform
    feast = commands.feast(str(platform.env()["MLOPS_FEATURE_REPO"]),
                           str(platform.feature_store_yaml))  # fmt: skip
    run.step("feast-apply", *feast, "apply")
    run.step("materialize", *commands.MATERIALIZE)
    run.summary["features"] = {
        "feature_service": run.settings.feature_service,
        "repo": run.rel(Path(platform.env()["MLOPS_FEATURE_REPO"])),
        "config": run.rel(platform.feature_store_yaml),
        "offline_store": layout.s3_url(platform.buckets["features"], layout.OFFLINE_PREFIX),
        "online_store": "sqlite",
    }


# --- training and governance ---------------------------------------------------------------


def stage_training(run: DemoRun) -> None:
    """The training Job, asked for two runners-up too: the A/B challenger and the shadow."""
    run.step("train", *commands.TRAIN, "--runners-up", "2", "--json", str(run.json_of("train")))
    outcome = json.loads(run.json_of("train").read_text())
    run.versions = outcome["registered"]
    run.summary["features"]["training_rows"] = outcome["training_rows"]
    run.summary["training"] = {
        "runs": len(outcome["candidates"]),
        "candidates": {name: c["metrics"] for name, c in outcome["candidates"].items()},
        "gate": outcome["gate"],
        "fairness_notes": outcome["notes"],
        "lineage": outcome["lineage"],
        "registered_for_review": run.versions,
    }
    for name, candidate in outcome["candidates"].items():
        run.stages.note(
            f"{name}: roc_auc={candidate['metrics']['roc_auc']:.4f} gate {outcome['gate'][name]}"
        )


def stage_governance(run: DemoRun) -> None:
    """A reviewer approves each version; the release manager promotes the best one and releases
    the runners-up as challenger and shadow. The pipeline may not approve its own versions."""
    from ml.governance import approvals

    name = run.settings.model_name
    ranked = list(run.versions)  # the winner first
    try:  # the pipeline registered these: it may not review them
        run.act("approve", ranked[0], ("svc-pipeline", "reviewer"))
        self_approval = "allowed"
    except UserError as refused:
        self_approval = f"refused: {refused.what}"
    for version in ranked:
        run.act("approve", version, REVIEWER, comment="card reviewed")
    champion = ranked[0]
    run.act("promote", champion, RELEASE_MANAGER)
    for alias, version in zip(("challenger", "shadow"), ranked[1:], strict=False):
        run.act("release", version, RELEASE_MANAGER, alias=alias)
    cards = {v: card_html(run, v) for v in ranked}
    metrics = run.summary["training"]["candidates"][run.versions[champion]]
    run.summary["registry"] = {
        "model_name": name,
        "champion_version": champion,
        "champion_candidate": run.versions[champion],
        "champion_metrics": metrics,
        "alias": "champion",
        "versions": dict(run.versions),
    }
    run.summary["governance"] = {
        "model_card": run.rel(cards[champion].with_suffix(".md")),
        "model_card_html": run.rel(cards[champion]),
        "model_cards": {v: run.rel(card) for v, card in cards.items()},
        "approval_status": {v.version: v.status for v in approvals.status(name)},
        "self_approval": self_approval,
        "audit_log": layout.s3_url(run.platform.buckets["reports"], layout.AUDIT_LOG_KEY),
    }
    for version, card in cards.items():
        run.output(f"Model card v{version} ({run.versions[version]})", card)
    run.stages.note(f"self-approval by the pipeline {self_approval}")


def card_html(run: DemoRun, version: str) -> Path:
    """The card the training step wrote for ``version`` (one folder per version)."""
    folder = run.platform.step_settings().model_card_dir(version)
    card = folder / "model_card.html"
    if not card.exists():
        raise UserError(f"no model card for v{version} at {card}", "see build/demo/steps/")
    return card


# --- serving, monitoring, retraining -------------------------------------------------------


def serving_policy(run: DemoRun):
    """Champion and challenger 50/50 (sticky per customer), the shadow scoring a copy."""
    from ml.serve.traffic import TrafficPolicy

    roles = len(run.versions)
    variants = {"champion": {"model": "champion", "weight": 1.0}}
    if roles > 1:
        variants = {"champion": {"model": "champion", "weight": 0.5},
                    "challenger": {"model": "challenger", "weight": 0.5}}  # fmt: skip
    shadows = [{"name": "shadow", "model": "shadow"}] if roles > 2 else []
    return TrafficPolicy(salt=f"demo-{run.settings.seed}", variants=variants, shadows=shadows)


def send(url: str, bodies: list[dict]) -> dict[str, Any]:
    """POST each body to /predict; status codes, versions that answered, client latency."""
    import httpx

    codes: list[int] = []
    versions: dict[str, int] = {}
    latencies = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for body in bodies:
            started = time.perf_counter()
            response = client.post("/predict", json=body)
            latencies.append((time.perf_counter() - started) * 1000)
            codes.append(response.status_code)
            if response.status_code == 200:
                version = str(response.json().get("model_version"))
                versions[version] = versions.get(version, 0) + 1
    quantiles = pd.Series(latencies).quantile([0.5, 0.99]) if latencies else None
    return {
        "codes": codes,
        "ok": sum(c == 200 for c in codes),
        "model_versions": versions,
        "latency_ms": {"p50": round(quantiles[0.5], 2), "p99": round(quantiles[0.99], 2)}
        if quantiles is not None
        else {},
    }


def stage_serving(run: DemoRun, url: str) -> None:
    """Labelled recent applications through the A/B split, then what clients get wrong."""
    import httpx

    from ml.serve.experiment import analyze_experiment

    assert run.applications is not None
    known = run.applications.dropna(subset=["defaulted"])
    good = send(url, scoring_requests(known, AB_REQUESTS))
    run.answered += good["ok"]
    with httpx.Client(base_url=url, timeout=30) as client:
        bad = _send_malformed(client, int(known["customer_id"].iloc[-1]))
    wait_shipped(run, shadows=good["ok"] if len(run.versions) > 2 else 0)
    log = run.settings.demo_dir / "serving" / "predictions.jsonl"
    records = shipped_records()
    write_jsonl(log, records)
    report = analyze_experiment(
        log, known[["application_id", "defaulted"]], run.settings.demo_dir / "experiment"
    )
    codes = [*good["codes"], *bad]
    run.summary["serving"] = {
        "requests": len(codes),
        "ok_2xx": sum(200 <= c < 300 for c in codes),
        "rejected_4xx": sum(400 <= c < 500 for c in codes),
        "errors_5xx": sum(c >= 500 for c in codes),
        "client_latency_ms": good["latency_ms"],
        "answered_by_version": good["model_versions"],
        "policy": serving_policy(run).model_dump(mode="json"),
        "prediction_log": layout.s3_url(
            run.platform.buckets["reports"], layout.PREDICTIONS_PREFIX
        ),
        "experiment": report.to_dict(),
    }
    run.output("A/B experiment report", run.settings.demo_dir / "experiment" / "experiment.md")
    run.output("A/B experiment plot", run.settings.demo_dir / "experiment" / "experiment.png")
    run.output("Prediction log as shipped (JSON Lines)", log)
    serving = run.summary["serving"]
    run.stages.note(
        f"{serving['requests']} requests: {serving['ok_2xx']} answered, "
        f"{serving['rejected_4xx']} rejected (4xx), {serving['errors_5xx']} server errors"
    )


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


def shipped_records() -> list[dict]:
    """Every prediction-log record serving has shipped to the reports bucket."""
    from ml.monitor.windows import parse_batch
    from ml.objectstore import Bucket

    reports = Bucket.for_role("reports")
    return [
        record
        for key in sorted(reports.keys(layout.PREDICTIONS_PREFIX))
        for record in parse_batch(reports.get_bytes(key))
    ]


def wait_shipped(run: DemoRun, shadows: int = 0, timeout_s: float = 60.0) -> None:
    """Until every answered prediction (and ``shadows`` shadow ones) is in the object store."""
    deadline = time.monotonic() + timeout_s
    live = shadow = 0
    while time.monotonic() < deadline:
        records = shipped_records()
        live = sum(not r.get("shadow") for r in records)
        shadow = sum(bool(r.get("shadow")) for r in records)
        if live >= run.answered and shadow >= shadows:
            return
        time.sleep(0.5)
    raise UserError(
        f"serving shipped {live} of {run.answered} live and {shadow} of {shadows} shadow "
        f"predictions within {timeout_s:.0f} s",
        "see build/serving/server-*.log",
    )


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def stage_monitoring(run: DemoRun, url: str) -> None:
    """Loan amounts three times the usual reach serving; the drift job finds it in the logs."""
    from ml.objectstore import Bucket

    assert run.applications is not None
    run.marks["drift_injected"] = time.time()
    drifted = send(url, scoring_requests(run.applications, DRIFTED_REQUESTS, DRIFT_FACTOR))
    run.answered += drifted["ok"]
    wait_shipped(run)
    out = run.settings.demo_dir / "monitoring"
    exposition = out / "metrics.prom"
    run.step("drift", *commands.DRIFT, "--report-dir", str(out),
             "--json", str(run.json_of("drift")), "--metrics-file", str(exposition))  # fmt: skip
    verdict = json.loads(run.json_of("drift").read_text())
    triggered = Bucket.for_role("reports").exists(layout.RETRAIN_TRIGGER_KEY)
    run.summary["monitoring"] = {
        "drift_detected": bool(verdict.get("drift_detected")),
        "dataset_drift": bool(verdict.get("dataset_drift")),
        "prediction_drift": bool(verdict.get("prediction_drift")),
        "retrain_requested": triggered,
        "alerts_would_fire": alerts_that_fire(exposition.read_text()),
        "metrics_exposition": run.rel(exposition),
        "injected_drift": {"loan_amount_factor": DRIFT_FACTOR, "requests": DRIFTED_REQUESTS},
        "drifted_features": [c["column"] for c in verdict.get("columns", []) if c.get("drifted")],
        "report_html": run.rel(out / "index.html"),
        "evidently_html": run.rel(out / "evidently_drift.html"),
    }
    run.output("Drift report (Evidently + plots)", out / "index.html")
    run.output("Evidently's own drift report", out / "evidently_drift.html")
    run.output("Monitor metrics as pushed to Prometheus", exposition)
    for alert in run.summary["monitoring"]["alerts_would_fire"]:
        run.stages.note(f"alert that would fire: {alert['alert']} ({alert['severity']})")


def stage_retraining(run: DemoRun, url: str) -> None:
    """A fresh labelled batch (the relation to default has changed) is ingested; the retrain
    job consumes the drift trigger; a better candidate is reviewed and promoted like any other,
    and the running server answers with it without a restart."""
    from ml.ingest import upstream_batch

    settings = run.settings
    batch = upstream_batch(
        2, pd.Timestamp.now(tz="UTC"), days=119, n_customers=settings.n_customers * 5 // 2,
        seed=settings.seed, drift=RETRAIN_DRIFT,
    )  # fmt: skip
    # Retraining reads the offline store; the online store (materialization) serves the new
    # customers' requests, which this demo does not send, so that CronJob is not run again here.
    deliver_and_ingest(run, "b0002", batch.tables(), "ingest-batch-2")
    run.step("retrain", *commands.RETRAIN, "--json", str(run.json_of("retrain")))
    decision = json.loads(run.json_of("retrain").read_text())
    summary = run.summary["retraining"] = {
        key: decision.get(key)
        for key in ("triggered", "reason", "champion_before", "new_version", "gate")
    }
    gate_metrics = decision.get("gate_metrics") or {}
    champion_auc = (gate_metrics.get("champion") or {}).get("roc_auc")
    summary["roc_auc"] = {
        f"champion v{decision.get('champion_before')}": champion_auc,
        **{n: m.get("roc_auc") for n, m in (gate_metrics.get("candidates") or {}).items()},
    }
    summary["promoted"] = False
    version = decision.get("new_version")
    if version is not None:
        summary["model_card"] = run.rel(card_html(run, version))
        run.output(f"Model card v{version} (retrained)", card_html(run, version))
        run.act("approve", version, REVIEWER, comment="retrained on drift")
        run.act("promote", version, RELEASE_MANAGER)
        served = wait_served(run, url, version)
        summary.update(promoted=True, champion_after=version, served_without_restart=served)
        run.marks["new_champion"] = time.time()
    summary["drift_to_new_champion_s"] = (
        round(run.marks["new_champion"] - run.marks["drift_injected"], 1)
        if "new_champion" in run.marks
        else None
    )


def wait_served(run: DemoRun, url: str, version: str, timeout_s: float = 60.0) -> dict:
    """Until the running server's champion share is answered by ``version`` (each worker
    re-resolves the registry's aliases on its own poll); the versions that answered."""
    assert run.applications is not None
    before = run.summary["registry"]["champion_version"]
    bodies = scoring_requests(run.applications, 50)
    deadline = time.monotonic() + timeout_s
    result: dict[str, Any] = {"model_versions": {}}
    while time.monotonic() < deadline:
        result = send(url, bodies)
        run.answered += result["ok"]
        answered = result["model_versions"]
        if version in answered and before not in answered:
            return answered
        time.sleep(1)
    raise UserError(
        f"the running server did not answer with v{version} within {timeout_s:.0f} s "
        f"(last answers by version: {result['model_versions']})",
        "see build/serving/server-*.log",
    )


def logs_complete(run: DemoRun) -> None:
    """After the server's clean shutdown every answered prediction is in the object store."""
    wait_shipped(run, timeout_s=30)
    live = sum(not r.get("shadow") for r in shipped_records())
    run.summary["serving"]["predictions_answered"] = run.answered
    run.summary["serving"]["predictions_logged"] = live


STAGES = {
    "data": stage_data,
    "features": stage_features,
    "training": stage_training,
    "governance": stage_governance,
    "serving": stage_serving,
    "monitoring": stage_monitoring,
    "retraining": stage_retraining,
}


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


def collect_audit_log(run: DemoRun) -> None:
    """A copy of the audit log of record (in the object store, which is in memory)."""
    from ml.objectstore import Bucket

    audit = run.settings.demo_dir / "governance" / "audit.jsonl"
    audit.parent.mkdir(parents=True, exist_ok=True)
    audit.write_bytes(Bucket.for_role("reports").get_bytes(layout.AUDIT_LOG_KEY))
    run.summary["governance"]["audit_log_copy"] = run.rel(audit)
    run.output("Audit log (hash-chained JSON Lines)", audit)


def finish(run: DemoRun) -> dict[str, Any]:
    """Write summary.json and index.html; return the summary."""
    summary_path = run.settings.demo_dir / "summary.json"
    run.output("Machine-readable summary (JSON)", summary_path)
    index = write_index(run.settings.demo_dir / "index.html", run.outputs, run.summary)
    run.summary["index_html"] = run.rel(index)
    summary_path.write_text(json.dumps(run.summary, indent=2, sort_keys=True, default=str) + "\n")
    return run.summary
