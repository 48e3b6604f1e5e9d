"""The drift monitor's windows in the cluster: the reference and recent traffic, from S3.

* Reference: ``REFERENCE_KEY``, written by ``mlops pipeline train`` (model features, ``score``,
  ``prediction``, label).
* Current: the newest prediction-log batches serving pods ship under ``PREDICTIONS_PREFIX``
  (gzip JSONL, the columns of :mod:`ml.serve.prediction_log`). Only live answers count: shadow
  predictions and fallbacks after an error describe no served decision.

The verdict lands at ``DRIFT_LATEST_KEY`` plus a dated copy under ``DRIFT_PREFIX``; on drift a
retraining request is written to ``RETRAIN_TRIGGER_KEY``, which ``mlops pipeline retrain``
consumes. Each key has one writer (this CronJob, ``concurrencyPolicy: Forbid``), so plain puts
are enough.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from contract.objectstore import (
    DRIFT_LATEST_KEY,
    DRIFT_PREFIX,
    PREDICTIONS_PREFIX,
    REFERENCE_KEY,
    RETRAIN_TRIGGER_KEY,
)

if TYPE_CHECKING:
    import pandas as pd

    from ml.monitor.drift import DriftResult
    from ml.objectstore import Bucket


@dataclass(frozen=True)
class WindowConfig:
    """Which recent traffic is the current window."""

    max_records: int = 5000
    """The newest this many live predictions."""
    max_age_s: float = 3600.0
    """...that are at most this old."""
    min_records: int = 200
    """Fewer live predictions than this is "not enough traffic": no verdict."""
    max_batches: int = 500
    """Read at most this many of the newest batch objects (bounds the job's memory and time)."""


def reference(reports: Bucket) -> pd.DataFrame:
    """The training reference window (a missing one is a UserError naming the key)."""
    return reports.get_parquet(REFERENCE_KEY)


def current(reports: Bucket, config: WindowConfig, now: datetime | None = None) -> pd.DataFrame:
    """The newest live predictions as a frame: one column per feature, plus score and prediction.

    Batch keys are read newest first by name (serving names them by time); records are then
    filtered by their own ``timestamp``, so the key layout only bounds how much is read.
    """
    import pandas as pd

    now = now or datetime.now(UTC)
    since = now - timedelta(seconds=config.max_age_s)
    keys = sorted(reports.keys(PREDICTIONS_PREFIX))[-config.max_batches :]
    rows: list[dict[str, Any]] = []
    for key in reversed(keys):
        rows.extend(r for r in parse_batch(reports.get_bytes(key)) if _recent_live(r, since))
        if len(rows) >= 2 * config.max_records:  # enough even after de-duplication
            break
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame([_flatten(r) for r in rows])
    frame = frame.drop_duplicates("request_id") if "request_id" in frame else frame
    frame = frame.sort_values("timestamp").tail(config.max_records).reset_index(drop=True)
    return _numeric(frame)


_TEXT_COLUMNS = ("request_id", "timestamp", "model_version")


def _numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Feature, score and id columns as numbers: JSON nulls make a column of ``None`` objects
    (a feature no row had a value for), which the drift tests cannot compare (seen in the e2e).
    """
    import pandas as pd

    for column in frame.columns:
        if column not in _TEXT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def parse_batch(data: bytes) -> list[dict[str, Any]]:
    """Records of one shipped batch (gzip or plain JSONL); malformed lines are skipped."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    records = []
    for line in data.decode("utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line must not stop the monitor
        if isinstance(record, dict):
            records.append(record)
    return records


def _recent_live(record: dict[str, Any], since: datetime) -> bool:
    if record.get("shadow") or record.get("error") or record.get("score") is None:
        return False
    try:
        stamp = datetime.fromisoformat(str(record.get("timestamp")))
    except ValueError:
        return False
    stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    return stamp >= since


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    features = record.get("features") or {}
    return {
        **features,
        "request_id": record.get("request_id"),
        "application_id": record.get("application_id"),
        "timestamp": record.get("timestamp"),
        "score": record.get("score"),
        "prediction": record.get("prediction"),
        "model_version": record.get("model_version"),
    }


def labelled(window: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """The window's predictions whose outcome is known, with the label column.

    Outcomes come from the ``applications`` table of the offline store (features bucket),
    joined on ``application_id``; only labels known by ``now`` count. Empty when the pod has
    no features bucket, the table is not there yet, or no logged request named an application.
    """
    import pandas as pd

    from ml.data.generate import LABEL
    from ml.objectstore import Bucket, configured

    if window.empty or "application_id" not in window or not configured("features"):
        return pd.DataFrame()
    from ml.ingest import read_offline_table

    outcomes = read_offline_table(Bucket.for_role("features"), "applications")
    if outcomes.empty or not {"application_id", LABEL} <= set(outcomes.columns):
        return pd.DataFrame()
    if "label_timestamp" in outcomes:
        known_by = pd.Timestamp(now or datetime.now(UTC))
        outcomes = outcomes[pd.to_datetime(outcomes["label_timestamp"], utc=True) <= known_by]
    outcomes = outcomes[["application_id", LABEL]].dropna().drop_duplicates("application_id")
    asked = window.dropna(subset=["application_id"])
    asked = asked.astype({"application_id": "int64"})
    return asked.merge(outcomes.astype({"application_id": "int64"}), on="application_id")


def publish(reports: Bucket, result: DriftResult, rows: int, now: datetime | None = None) -> dict:
    """Write the verdict (latest and dated) and, on drift, the retraining request; return it."""
    now = now or datetime.now(UTC)
    doc = {**result.to_dict(), "verdict": result.verdict(), "rows": rows, "at": now.isoformat()}
    body = json.dumps(doc, indent=2).encode()
    reports.put_bytes(DRIFT_LATEST_KEY, body, "application/json")
    reports.put_bytes(f"{DRIFT_PREFIX}{now:%Y%m%dT%H%M%SZ}.json", body, "application/json")
    if result.drift_detected:
        reason = f"drift monitor: {result.verdict()}"
        trigger = {"reason": reason, "time": now.isoformat(), "verdict": doc}
        reports.put_bytes(RETRAIN_TRIGGER_KEY, json.dumps(trigger).encode(), "application/json")
    return doc
