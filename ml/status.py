"""``mlops status``: the platform at a glance, embedded or against a cluster's endpoints.

Registered versions with their governance state and aliases (from the MLflow server), what
awaits review, the drift monitor's last verdict and the last retraining decision with their
times, the last rollout decision, and whether each service answers. Where the verdicts come
from follows the mode: the reports bucket when one is configured (the cluster's jobs write
there), else what the embedded demo's steps wrote under ``build/demo/steps/``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ml.settings import Settings
from ml.up import PROBES


def collect(settings: Settings, endpoints: dict[str, str]) -> dict[str, Any]:
    """Everything ``mlops status`` shows, as JSON-able data."""
    versions = _versions(settings.model_name)
    return {
        "model": settings.model_name,
        "versions": versions,
        "awaiting_review": [v["version"] for v in versions if v["status"] == "candidate"],
        "champion": next((v["version"] for v in versions if "champion" in v["aliases"]), None),
        "drift": _drift(settings),
        "retraining": _retraining(settings),
        "rollout": _rollout(settings),
        "services": {name: _reachable(name, url) for name, url in endpoints.items()},
    }


def _versions(model_name: str) -> list[dict[str, Any]]:
    from ml.errors import UserError
    from ml.governance import approvals

    try:
        found = approvals.status(model_name)
    except UserError:  # no registered model yet
        return []
    return [
        {"version": str(v.version), "status": v.status, "aliases": list(v.aliases)}
        for v in sorted(found, key=lambda v: int(v.version))
    ]


def _drift(settings: Settings) -> dict[str, Any] | None:
    from contract.objectstore import DRIFT_LATEST_KEY

    verdict = _from_bucket(DRIFT_LATEST_KEY)
    if verdict is None:
        verdict = _from_file(settings.demo_dir / "steps" / "drift.json")
    if verdict is None:
        return None
    drifted = [c["column"] for c in verdict.get("columns", []) if c.get("drifted")]
    return {
        "drift_detected": bool(verdict.get("drift_detected")),
        "drifted": drifted,
        "time": verdict.get("at") or verdict.get("_time"),
    }


def _retraining(settings: Settings) -> dict[str, Any] | None:
    from ml.objectstore import configured

    # Against a cluster (its buckets configured) the registry is the record, never a local
    # demo's leftover file.
    embedded = not configured("reports")
    decision = _from_file(settings.demo_dir / "steps" / "retrain.json") if embedded else None
    if decision is None:
        return _retraining_from_registry(settings.model_name)
    return {
        "reason": decision.get("reason"),
        "new_version": decision.get("new_version"),
        "time": decision.get("_time"),
    }


def _retraining_from_registry(model_name: str) -> dict[str, Any] | None:
    """In a cluster the retrain job records its decision as tags on the version it concerns."""
    from mlflow import MlflowClient

    from ml.errors import UserError
    from ml.retrain import DECISION_REASON_TAG

    try:
        versions = MlflowClient().search_model_versions(f"name = '{model_name}'")
    except Exception as error:  # an unreachable server is shown in services, not raised here
        raise UserError(f"cannot read the registry: {error}", "check the MLflow URI") from None
    tagged = [v for v in versions if DECISION_REASON_TAG in v.tags]
    if not tagged:
        return None
    latest = max(tagged, key=lambda v: v.last_updated_timestamp or 0)
    return {
        "reason": latest.tags[DECISION_REASON_TAG],
        "version": str(latest.version),
        "time": _iso((latest.last_updated_timestamp or 0) / 1000),
    }


def _rollout(settings: Settings) -> dict[str, Any] | None:
    log = settings.build / "serving" / "rollout.jsonl"
    if not log.exists():
        return None
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def _from_bucket(key: str) -> dict[str, Any] | None:
    from ml.objectstore import Bucket, configured

    if not configured("reports"):
        return None
    reports = Bucket.for_role("reports")
    return json.loads(reports.get_bytes(key)) if reports.exists(key) else None


def _from_file(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    data.setdefault("_time", _iso(path.stat().st_mtime))
    return data


def _reachable(name: str, url: str) -> dict[str, Any]:
    import httpx

    base = url.split("/", 3)
    probe = "/".join(base[:3]) + PROBES.get(name, "/")
    try:
        code = httpx.get(probe, timeout=2).status_code
    except httpx.HTTPError as error:
        return {"url": url, "up": False, "detail": type(error).__name__}
    return {"url": url, "up": code < 300, "detail": f"HTTP {code}"}


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


def render(status: dict[str, Any]) -> str:
    """The one-screen text form."""
    lines = [f"model {status['model']}: champion v{status['champion'] or '-'}"]
    for v in status["versions"]:
        aliases = ", ".join(v["aliases"]) or "-"
        lines.append(f"  v{v['version']:<4} {v['status']:<11} aliases: {aliases}")
    if not status["versions"]:
        lines.append("  no registered version")
    review = ", ".join(f"v{v}" for v in status["awaiting_review"]) or "nothing"
    lines.append(f"awaiting review: {review}")
    drift = status["drift"]
    lines.append(
        "drift: no verdict yet"
        if drift is None
        else f"drift: {'DRIFT' if drift['drift_detected'] else 'no drift'} "
        f"({', '.join(drift['drifted']) or 'no feature'}) at {drift['time']}"
    )
    retrain = status["retraining"]
    lines.append(
        "retraining: no decision yet"
        if retrain is None
        else f"retraining: {retrain['reason']} (at {retrain['time']})"
    )
    rollout = status["rollout"]
    lines.append(f"rollout: {json.dumps(rollout) if rollout else 'no decision yet'}")
    lines.append("services:")
    for name, service in status["services"].items():
        state = "up" if service["up"] else "DOWN"
        lines.append(f"  {name:<15} {state:<5} {service['url']} ({service['detail']})")
    if not status["services"]:
        lines.append("  none known (start them with `mlops up`, or pass --endpoint)")
    return "\n".join(lines)
