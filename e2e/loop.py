"""The whole ML loop on the rendered stack, each step asserted and timed.

The harness (:mod:`e2e.kubelet` and friends) runs the rendered workloads; this module plays
the parts outside the platform, as they would act on a real cluster:

* the **upstream source system** writes raw batches to the features bucket's ``landing/``;
* the **API clients** call the ``serving`` Service by its cluster DNS name from a container on
  the e2e network (``e2e/client.py``), including a drifted stream and a burst of bad requests;
* the **people**: a reviewer and a release manager run ``mlops governance`` in a pod with the
  pipeline's configuration, like ``kubectl run`` would.

Every CronJob runs on demand from its rendered ``jobTemplate``; nothing first-party is patched.
Each step is a function; :func:`run_loop` runs them in order and records ``{ok, seconds}``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from contract import objectstore as layout
from e2e.session import LOOKBACK
from ml.serve.clients import scoring_requests

MODEL = "credit-risk"
REVIEWER = ("bob", "reviewer")
RELEASE_MANAGER = ("carol", "release_manager")
SERVICE_URL = "http://serving.mlops.svc.cluster.local:3000/predict"
DRIFT_FACTOR = 3.0  # loan amounts of the drifted stream, relative to the applications'
# Batch 2, what retraining learns from. 119 days: all of it inside the retrain job's 120-day
# window whatever the time of day (the same rows every run). The size and the drift were
# measured (tests/integration/test_cluster_training.py's path, seed 42): with 4000 customers
# the candidates beat the champion by < 0.003 AUC, and a stronger concept drift (0.8) makes
# the loan-to-income ratio, which tracks age through income, dominate, so the fairness gate
# refuses the better models; 10000 customers at 0.5 give a winner that passes both gates with
# a margin of 0.012 AUC.
RETRAIN_BATCH = {"days": 119, "n_customers": 10_000}
# The customers live traffic is for: active in the last 20 days, so the online store has their
# features (the transactions view's TTL is 14 days; batch 1 ends 120 days ago, and scoring its
# customers would read nothing). Unlabelled (labels come 30-90 days later): no training sees it.
LIVE_BATCH, LIVE_DAYS = 3, 20
REPLAYED_OUTCOMES = 300  # the drift job needs >= 50 labelled predictions for a quality gauge
RETRAIN_DRIFT_SIZE = 0.5


class LoopError(AssertionError):
    """A loop step did not reach its outcome; the message says what did not happen."""


@dataclass
class LoopState:
    versions: dict[str, str] = field(default_factory=dict)  # role -> model version
    answered: int = 0
    notes: dict[str, Any] = field(default_factory=dict)  # JSON-able; goes to summary.json
    live: pd.DataFrame | None = None  # the applications live traffic is for
    marks: dict[str, float] = field(default_factory=dict)  # event -> time.time()


def wait_for(what: str, check: Callable[[], Any], timeout_s: float, every_s: float = 2.0):
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after the bound."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(every_s)
    raise LoopError(f"{what}: not reached within {timeout_s:.0f} s (last: {last!r})")


# --- upstream and clients ----------------------------------------------------------------------


def upstream(cluster, number: int, end: pd.Timestamp, **kwargs) -> pd.DataFrame:
    """Write upstream batch ``number`` to landing/; returns its applications."""
    from ml.ingest import upstream_batch, write_landing_batch

    dataset = upstream_batch(number, end, **kwargs)
    with cluster.host_s3():
        from ml.objectstore import Bucket

        write_landing_batch(Bucket(cluster.bucket("features")), f"b{number:04d}", dataset.tables())
    return dataset.applications


def unknown_customers(n: int) -> list[dict]:
    """Requests for customers nobody ingested: the client-side error burst (404s)."""
    return [
        {"customer_id": 9_000_000_000 + i, "loan_amount": 1000.0, "term_months": 12}
        for i in range(n)
    ]


def send(cluster, bodies: list[dict], deadline_s: float = 240, concurrency: int = 8) -> dict:
    """Send ``bodies`` through the Service from a client container; the client's summary."""
    return cluster.client(SERVICE_URL, bodies, deadline_s=deadline_s, concurrency=concurrency)


# --- people ------------------------------------------------------------------------------------


def governance(cluster, *args: str, who: tuple[str, str]) -> str:
    """A person runs ``mlops governance`` logged in to MLflow as themselves.

    The server names who acted (``--user`` must match the login), so the pod gets the
    person's own credentials file in place of the pipeline's.
    """
    user, role = who
    command = ["mlops", "governance", *args, "--user", user, "--role", role]
    own = {"mlflow-credentials": cluster.person_mlflow_secret(user, MODEL)}
    return cluster.oneoff("pipeline-train", command, timeout_s=180, secret_volumes=own)


def review_and_promote(cluster, version: str) -> None:
    governance(cluster, "approve", version, "--comment", "e2e review", who=REVIEWER)
    governance(cluster, "promote", version, who=RELEASE_MANAGER)


def registry_versions(cluster) -> dict[str, dict]:
    """version -> {status, aliases} as the MLflow server reports them (host-side client)."""
    with cluster.host_mlflow():
        from ml.errors import UserError
        from ml.governance import approvals

        try:
            versions = approvals.status(MODEL)
        except UserError:  # no registered model yet
            return {}
        return {str(v.version): {"status": v.status, "aliases": v.aliases} for v in versions}


def newest_version(cluster) -> str:
    versions = registry_versions(cluster)
    if not versions:
        raise LoopError("no model version is registered")
    return max(versions, key=int)


# --- the steps ---------------------------------------------------------------------------------


def step_mlflow_users(cluster, state: LoopState) -> None:
    """The admin Job creates each workload's own MLflow user; they authenticate as those."""
    cluster.run_job("mlflow-users", timeout_s=180)


def step_feast_apply(cluster, state: LoopState) -> None:
    cluster.run_job("feast-apply", timeout_s=300)
    cluster.wait_ready("feast-server", timeout_s=180)


def step_first_batch(cluster, state: LoopState) -> None:
    now = pd.Timestamp.now(tz="UTC")
    upstream(cluster, 1, now - pd.Timedelta(days=120))
    state.live = upstream(cluster, LIVE_BATCH, now, days=LIVE_DAYS)
    cluster.run_cronjob("feast-ingest", timeout_s=300)
    with cluster.host_s3():
        from ml.objectstore import Bucket

        features = Bucket(cluster.bucket("features"))
        missing = [
            t
            for t in ("customer_profile", "customer_transactions", "applications")
            if not list(features.keys(layout.offline_table_prefix(t)))
        ]
    if missing:
        raise LoopError(f"ingest wrote no offline table for {missing}")


def step_materialize(cluster, state: LoopState) -> None:
    cluster.run_cronjob("feast-materialize", timeout_s=300)


def step_bootstrap_training(cluster, state: LoopState) -> None:
    if registry_versions(cluster):
        raise LoopError("the platform already has a model before its first training run")
    cluster.run_job("pipeline-train", timeout_s=900)
    version = newest_version(cluster)
    status = registry_versions(cluster)[version]
    if status["status"] != "candidate" or status["aliases"]:
        raise LoopError(f"v{version} after training: {status}; expected a candidate, no alias")
    state.versions["bootstrap"] = version


def step_review_and_promote(cluster, state: LoopState) -> None:
    version = state.versions["bootstrap"]
    review_and_promote(cluster, version)
    status = registry_versions(cluster)[version]
    if "champion" not in status["aliases"]:
        raise LoopError(f"v{version} is not champion after promotion: {status}")


def step_serving_ready(cluster, state: LoopState) -> None:
    cluster.wait_ready("serving", timeout_s=300)
    state.notes["serving_started"] = cluster.started_at("serving")


def step_live_traffic(cluster, state: LoopState) -> None:
    """Every worker of every pod answers with the champion (warm-up 503s are counted)."""
    probe = scoring_requests(state.live, 40)
    warmup: list[dict] = []

    def all_answered() -> bool:
        result = send(cluster, probe)
        warmup.append(result["codes"])
        return result["codes"].get("200", 0) == len(probe)

    wait_for("every serving worker answering", all_answered, timeout_s=180, every_s=5)
    state.notes["warmup_rounds"] = warmup
    bodies = scoring_requests(state.live, 400)
    result = send(cluster, bodies)
    ok = result["codes"].get("200", 0)
    if ok < 0.99 * len(bodies):
        raise LoopError(f"live traffic: {result}")
    champion = state.versions["bootstrap"]
    if set(result["model_versions"]) != {champion}:
        raise LoopError(f"answers came from {result['model_versions']}, expected v{champion}")
    state.answered += ok
    state.notes["live_traffic"] = result


ERROR_BURST_S, ERROR_BURST_PER_S = 420, 8


def step_error_burst(cluster, state: LoopState) -> None:
    """Unknown customers at a steady rate for 7 minutes (the alert needs 5 min of > 5%).

    8 per second: the loop's own traffic (drifted stream, shadow, canary: up to ~6000 answers in
    one 5-minute window) must not dilute the errors under 5%; at 2 per second it did (4.9%,
    measured), and the alert's pending state restarted.
    """
    state.marks["error_burst"] = time.time()
    bodies = unknown_customers(ERROR_BURST_S * ERROR_BURST_PER_S)
    cluster.client_background(
        "error-burst", SERVICE_URL, bodies, deadline_s=ERROR_BURST_S, concurrency=2,
        rate_per_s=ERROR_BURST_PER_S,
    )  # fmt: skip


def step_drifted_traffic(cluster, state: LoopState) -> None:
    """A covariate shift in live traffic: loan amounts three times the usual."""
    state.marks["drift_injected"] = time.time()
    bodies = scoring_requests(state.live, 1500, factor=DRIFT_FACTOR)
    result = send(cluster, bodies, deadline_s=300)
    state.answered += result["codes"].get("200", 0)
    state.notes["drifted_traffic"] = result


def step_new_labelled_batch(cluster, state: LoopState) -> None:
    """Upstream delivers recent applications, with a changed relation to default (concept)."""
    from ml.data.generate import Drift

    drift = Drift("concept", RETRAIN_DRIFT_SIZE)
    now = pd.Timestamp.now(tz="UTC")
    applications = upstream(cluster, 2, now, **RETRAIN_BATCH, drift=drift)
    cluster.run_cronjob("feast-ingest", timeout_s=300)
    cluster.run_cronjob("feast-materialize", timeout_s=300)
    replay_known_outcomes(cluster, state, applications, now)


def replay_known_outcomes(cluster, state: LoopState, applications, now) -> None:
    """Score applications whose outcomes are known by now, so the drift job can measure quality.

    On a real platform the outcome of a prediction arrives 30-90 days after it; the e2e cannot
    wait, so it replays applications of the past months (their customers' features are fresh)
    and the monitor joins their outcomes from the offline store (``mlops_model_quality``).
    """
    known = applications[applications["label_timestamp"] <= now].dropna(subset=["defaulted"])
    result = send(cluster, scoring_requests(known, REPLAYED_OUTCOMES))
    if result["codes"].get("200", 0) < 0.99 * REPLAYED_OUTCOMES:
        raise LoopError(f"replaying applications with known outcomes: {result}")
    state.answered += result["codes"]["200"]
    state.notes["replayed_with_outcomes"] = result


def step_drift_detected(cluster, state: LoopState) -> None:
    """Once serving has shipped what it answered (batches close every 30 s), the drift job
    finds the drift in those logs, as its next scheduled run would."""
    wait_for(
        f"the {state.answered} answered predictions shipped to the object store",
        lambda: len(shipped_live(cluster)) >= state.answered,
        timeout_s=120,
        every_s=5,
    )
    cluster.run_cronjob("monitoring-drift", timeout_s=300)
    with cluster.host_s3():
        from ml.objectstore import Bucket

        reports = Bucket(cluster.bucket("reports"))
        verdict = json.loads(reports.get_bytes(layout.DRIFT_LATEST_KEY))
        triggered = reports.exists(layout.RETRAIN_TRIGGER_KEY)
    if not verdict.get("drift_detected") or not triggered:
        raise LoopError(f"drift not detected from the logs: {verdict} (trigger: {triggered})")
    state.marks["drift_detected"] = time.time()
    state.notes["drift_verdict"] = verdict


def step_retrain(cluster, state: LoopState) -> None:
    before = newest_version(cluster)
    cluster.run_cronjob("pipeline-retrain", timeout_s=900)
    after = newest_version(cluster)
    if after == before:
        raise LoopError("retraining registered no new candidate (gate kept the champion)")
    state.versions["retrained"] = after


def step_review_retrained(cluster, state: LoopState) -> None:
    """Same review as any version; then shadow first, as a careful release would."""
    version = state.versions["retrained"]
    governance(cluster, "approve", version, "--comment", "retrained on drift", who=REVIEWER)
    governance(cluster, "release", version, "--alias", "shadow", who=RELEASE_MANAGER)


def step_shadow(cluster, state: LoopState) -> None:
    """The shadow scores every request; answers still come only from the champion."""
    champion, shadow = state.versions["bootstrap"], state.versions["retrained"]
    bodies = scoring_requests(state.live, 300)
    result = wait_for(
        f"serving to pick up shadow v{shadow}",
        lambda: _shadowed(cluster, bodies, shadow),
        timeout_s=120,
        every_s=5,
    )
    if set(result["model_versions"]) != {champion}:
        raise LoopError(f"a shadow changed live answers: {result['model_versions']}")
    state.answered += result["codes"].get("200", 0)


def _shadowed(cluster, bodies: list[dict], shadow: str) -> dict | None:
    result = send(cluster, bodies)
    return result if cluster.metric_sum("mlops_shadow_predictions_total") > 0 else None


def step_canary_split(cluster, state: LoopState) -> None:
    """Released as challenger: exactly the customers the policy's router sends to the canary
    get it (sticky), and their share of the traffic is the policy's canary share.

    Each worker picks the alias up on its own poll, so a round sent meanwhile is mixed; rounds
    repeat until the served split is exactly the router's, then that round is measured.
    """
    version = state.versions["retrained"]
    governance(cluster, "release", version, "--alias", "challenger", who=RELEASE_MANAGER)
    bodies = scoring_requests(state.live, 2000)
    router = cluster.policy().router()
    routed = sum(router.assign(b["customer_id"]) == "challenger" for b in bodies)

    def split() -> dict | None:
        result = send(cluster, bodies, deadline_s=300)
        return result if result["variants"].get("challenger", 0) == routed else None

    result = wait_for(
        f"every serving worker sending the router's {routed} requests to the challenger",
        split,
        timeout_s=180,
        every_s=5,
    )
    expected = cluster.policy_share("challenger")
    share = routed / len(bodies)
    spread = 4 * (expected * (1 - expected) / len(bodies)) ** 0.5  # the hash's uniformity
    if abs(share - expected) > spread:
        raise LoopError(f"challenger share {share:.3f}, policy says {expected:.3f} ± {spread:.3f}")
    state.answered += result["codes"].get("200", 0)
    state.notes["split"] = {"expected": expected, "observed": round(share, 4), "n": len(bodies)}


def step_promote_retrained(cluster, state: LoopState) -> None:
    version = state.versions["retrained"]
    governance(cluster, "promote", version, who=RELEASE_MANAGER)
    bodies = scoring_requests(state.live, 100)

    def served() -> dict | None:
        result = send(cluster, bodies)
        return result if set(result["model_versions"]) == {version} else None

    result = wait_for(f"v{version} answering as champion", served, timeout_s=180, every_s=5)
    if cluster.started_at("serving") != state.notes["serving_started"]:
        raise LoopError("serving was restarted to pick up the new champion")
    state.answered += result["codes"].get("200", 0)
    state.marks["new_champion"] = time.time()


def step_alerts(cluster, state: LoopState) -> None:
    """Both alerts fired in Prometheus (now, or earlier in the run and since resolved)."""
    state.marks["drift_alert"] = cluster.prometheus.wait_alert(
        "MlopsDatasetDriftDetected", timeout_s=240
    )
    # The rule needs 5 minutes of the burst: by 2 minutes after the burst's end it has fired.
    remaining = ERROR_BURST_S + 120 - (time.time() - state.marks["error_burst"])
    try:
        state.marks["error_alert"] = cluster.prometheus.wait_alert(
            "MlopsHighErrorRate", timeout_s=max(remaining, 60)
        )
    except Exception as error:
        raise LoopError(f"{error}; what Prometheus saw: {_error_evidence(cluster)}") from None


def _error_evidence(cluster) -> dict:
    """The error counters and the alert's history, for a failure message."""
    prometheus = cluster.prometheus
    return {
        "errors_by_variant_code": {
            f"{r['metric'].get('variant')}/{r['metric'].get('code')}": r["value"][1]
            for r in prometheus.query("sum by (variant, code) (mlops_request_errors_total)")
        },
        "alert_states_seen": sorted(
            r["metric"].get("alertstate", "")
            for r in prometheus.query(
                f'max_over_time(ALERTS{{alertname="MlopsHighErrorRate"}}[{LOOKBACK}])'
            )
        ),
    }


def step_artifacts_deduplicated(cluster, state: LoopState) -> None:
    """The tracking server kept the loop's artifacts content-addressed (the candidates' shared
    environment files once), and the collector CronJob finds every blob still in use."""
    from contract.objectstore import artifact_destination
    from ml.experiments.dedup_store import store_bytes, unused_blobs

    store = artifact_destination(cluster.bucket("artifacts"))
    with cluster.host_s3():
        before = store_bytes(store)
    cluster.run_cronjob("mlflow-artifact-gc", timeout_s=300)  # raises unless it succeeded
    with cluster.host_s3():
        stored, unused = store_bytes(store), unused_blobs(store)
    state.notes["artifact_store"] = stored
    if not stored["files"] or stored["blobs"] >= stored["files"]:
        raise LoopError(f"the artifacts bucket holds no deduplicated artifacts: {stored}")
    if stored["blobs"] != before["blobs"] or unused:
        raise LoopError(
            f"the artifact collector should find all {before['blobs']} blobs in use and delete "
            f"none; {stored['blobs']} are left and it recorded {len(unused)} as unused"
        )


def step_publish_site(cluster, state: LoopState) -> None:
    cluster.run_job("governance-docs", timeout_s=600)
    with cluster.host_s3():
        from ml.objectstore import Bucket

        reports = Bucket(cluster.bucket("reports"))
        if not reports.exists(layout.SITE_PREFIX + "index.html"):
            raise LoopError(f"no {layout.SITE_PREFIX}index.html in the reports bucket")


def step_status(cluster, state: LoopState) -> None:
    """`mlops status` against the cluster shows what the loop did: the champion, the drift
    verdict the monitor wrote to the reports bucket, the retraining decision on the registry."""
    from ml import status
    from ml.settings import get_settings

    with cluster.host_mlflow(), cluster.host_s3():
        get_settings.cache_clear()  # the buckets and URIs of this context, not the host's
        try:
            seen = status.collect(get_settings(), {})
        finally:
            get_settings.cache_clear()
    production = [v["version"] for v in seen["versions"] if v["status"] == "production"]
    missing = [
        what
        for what, ok in (
            ("a champion in production", seen["champion"] in production),
            ("the drift verdict (drift detected)", (seen["drift"] or {}).get("drift_detected")),
            ("the retraining decision", seen["retraining"] is not None),
        )
        if not ok
    ]
    state.notes["status"] = {k: seen[k] for k in ("champion", "drift", "retraining")}
    if missing:
        raise LoopError(f"mlops status against the cluster lacks {', '.join(missing)}: {seen}")


def step_logs_complete(cluster, state: LoopState) -> None:
    """After a clean shutdown every answered prediction is in the object store."""
    cluster.stop("serving", timeout_s=60)
    live = shipped_live(cluster)
    state.notes["predictions_logged_live"] = len(live)
    state.notes["predictions_answered"] = state.answered
    if len(live) < state.answered:
        raise LoopError(f"{len(live)} live predictions logged, {state.answered} answered")


def shipped_live(cluster) -> set[str]:
    """Request ids of the live (not shadow) predictions in the object store."""
    with cluster.host_s3():
        from ml.monitor.windows import parse_batch
        from ml.objectstore import Bucket

        reports = Bucket(cluster.bucket("reports"))
        records = [
            r
            for key in reports.keys(layout.PREDICTIONS_PREFIX)
            for r in parse_batch(reports.get_bytes(key))
        ]
    return {r["request_id"] for r in records if not r.get("shadow")}


STEPS: tuple[tuple[str, Callable[[Any, LoopState], None]], ...] = (
    ("mlflow_users", step_mlflow_users),
    ("feast_apply", step_feast_apply),
    ("ingest_first_batch", step_first_batch),
    ("materialize", step_materialize),
    ("bootstrap_training", step_bootstrap_training),
    ("review_and_promote", step_review_and_promote),
    ("serving_ready", step_serving_ready),
    ("live_traffic", step_live_traffic),
    ("error_burst_started", step_error_burst),
    ("drifted_traffic", step_drifted_traffic),
    ("new_labelled_batch", step_new_labelled_batch),
    ("drift_detected", step_drift_detected),
    ("retrain_on_cluster_data", step_retrain),
    ("review_retrained", step_review_retrained),
    ("shadow_never_answers", step_shadow),
    ("canary_split", step_canary_split),
    ("promote_without_restart", step_promote_retrained),
    ("alerts_fired", step_alerts),
    ("artifacts_deduplicated", step_artifacts_deduplicated),
    ("publish_site", step_publish_site),
    ("status_sees_the_loop", step_status),
    ("logs_complete_after_shutdown", step_logs_complete),
)


def run_loop(
    cluster,
    record: Callable[[str, bool, float, str], None],
    state: LoopState,
    steps: tuple[tuple[str, Callable[[Any, LoopState], None]], ...] = STEPS,
) -> LoopState:
    """Run ``steps`` in order; stop at the first failure (later steps depend on it).

    ``state`` is the caller's, so what the steps measured is reported even after a failure.
    """
    for name, step in steps:
        start = time.monotonic()
        print(f"e2e: loop step {name} ...", flush=True)
        try:
            step(cluster, state)
        except Exception as error:
            record(name, False, time.monotonic() - start, _one_line(error))
            raise
        record(name, True, time.monotonic() - start, "")
    return state


LATENCIES = (  # (name, from mark, to mark)
    ("drift_to_alert_s", "drift_injected", "drift_alert"),
    ("drift_to_detected_s", "drift_injected", "drift_detected"),
    ("drift_to_new_champion_s", "drift_injected", "new_champion"),
    ("error_burst_to_alert_s", "error_burst", "error_alert"),
)


def latencies(state: LoopState) -> dict[str, float]:
    """Seconds from an injected event to the platform's reaction, for those that happened."""
    marks = state.marks
    return {
        name: round(marks[end] - marks[begin], 1)
        for name, begin, end in LATENCIES
        if begin in marks and end in marks
    }


def series_named(exprs: list[str]) -> set[str]:
    """Metric names a set of PromQL expressions reads (recording rules excluded by caller)."""
    names: set[str] = set()
    for expr in exprs:
        names |= set(re.findall(r"\b((?:mlops|kube)_[a-zA-Z0-9_]+)", expr))
    return names


def _one_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0][:500]
