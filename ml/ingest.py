"""Ingestion in the cluster: upstream batches in ``landing/`` → validated offline store on S3.

The upstream system writes each batch as one Parquet file per table under
``landing/<batch_id>/<table>.parquet`` of the features bucket. :func:`ingest_pending` validates
every pending batch with the pandera schemas (:mod:`ml.data.validate`): accepted rows go to
``accepted/<batch_id>/<table>.parquet``, rejected rows with their reasons to
``quarantine/<batch_id>/<table>.parquet``; each touched offline table (``offline/<table>/``,
the folder a Feast file source reads) is rebuilt as one file of all accepted batches (see
:func:`contract.objectstore.offline_table_key` for why one file), and the landing files are
moved to ``processed/<batch_id>/``. Accepted + quarantined = received, per table.

It is idempotent: a batch is pending while any of its files is still under ``landing/``, and
re-processing one overwrites the same output keys, so a run that died half-way is simply
repeated. :func:`write_landing_batch` is the upstream side, used by the e2e harness and tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from contract import objectstore as layout
from ml.data.generate import CreditDataset, Drift, generate
from ml.data.validate import validate
from ml.objectstore import Bucket

TABLES = ("customers", "customer_profile", "customer_transactions", "applications")
# Ids of batch n start here, so batches from different upstream runs never collide.
_CUSTOMER_ID_STRIDE = 1_000_000
_APPLICATION_ID_STRIDE = 10_000_000


@dataclass(frozen=True)
class TableCounts:
    batch_id: str
    table: str
    received: int
    accepted: int
    quarantined: int


def upstream_batch(
    number: int,
    end: pd.Timestamp,
    *,
    days: int = 270,
    n_customers: int = 4000,
    seed: int = 42,
    drift: Drift | None = None,
) -> CreditDataset:
    """The ``number``-th upstream delivery: ``days`` of history ending at ``end``.

    Batch 1 with the default seed is the seeded dataset shifted in time; later batches are new
    customers and applications (ids offset by batch) under ``drift``. Labels not yet known at
    ``end`` are missing, as in :func:`ml.data.generate.generate`.
    """
    return generate(
        n_customers,
        seed=seed + number - 1,
        days=days,
        start=_utc(end).floor("D") - pd.Timedelta(days=days),
        drift=drift,
        first_customer_id=1001 + (number - 1) * _CUSTOMER_ID_STRIDE,
        first_application_id=1 + (number - 1) * _APPLICATION_ID_STRIDE,
    )


def write_landing_batch(bucket: Bucket, batch_id: str, tables: dict[str, pd.DataFrame]) -> None:
    """Upstream side: write one batch's raw tables to ``landing/<batch_id>/<table>.parquet``."""
    _check_batch_id(batch_id)
    for table, frame in tables.items():
        bucket.put_parquet(f"{layout.LANDING_PREFIX}{batch_id}/{table}.parquet", frame)


def pending_batches(bucket: Bucket) -> list[str]:
    """Batch ids with files under ``landing/``, oldest name first."""
    ids = {key[len(layout.LANDING_PREFIX) :].split("/", 1)[0] for key in _landing_keys(bucket)}
    return sorted(i for i in ids if i)


def ingest_pending(bucket: Bucket) -> list[TableCounts]:
    """Validate and file every pending batch; return the counts per batch and table."""
    return [
        count for batch_id in pending_batches(bucket) for count in ingest_batch(bucket, batch_id)
    ]


def ingest_batch(bucket: Bucket, batch_id: str) -> list[TableCounts]:
    """Validate one landing batch, file its rows, rebuild the offline tables, move it away."""
    prefix = f"{layout.LANDING_PREFIX}{batch_id}/"
    keys = [k for k in bucket.keys(prefix) if k.endswith(".parquet")]
    counts = []
    for key in keys:
        table = key[len(prefix) : -len(".parquet")]
        result = validate(table, bucket.get_parquet(key))
        bucket.put_parquet(layout.accepted_batch_key(batch_id, table), result.accepted)
        if len(result.quarantined):
            bucket.put_parquet(
                f"{layout.QUARANTINE_PREFIX}{batch_id}/{table}.parquet", result.quarantined
            )
        rebuild_offline_table(bucket, table)
        if table in _feature_view_tables() and len(result.accepted):
            mark_for_materialization(bucket, result.accepted["event_timestamp"].min())
        counts.append(
            TableCounts(
                batch_id, table, result.received, len(result.accepted), len(result.quarantined)
            )
        )
    # Move last: until every table is filed, the batch stays pending and is redone whole.
    for key in keys:
        moved = layout.PROCESSED_PREFIX + key[len(layout.LANDING_PREFIX) :]
        bucket.put_bytes(moved, bucket.get_bytes(key))
        bucket.delete(key)
    return counts


def _feature_view_tables() -> set[str]:
    """The offline tables the feature views read: one per view, named after it (see
    ``ml.features.definitions.s3_sources``)."""
    from ml.features.definitions import FEATURE_VIEWS

    return {view.name for view in FEATURE_VIEWS}


def mark_for_materialization(bucket: Bucket, oldest: pd.Timestamp) -> None:
    """Lower the materialization watermark to ``oldest`` (see ``MATERIALIZE_FROM_KEY``)."""
    oldest = _utc(pd.Timestamp(oldest))
    current = materialization_watermark(bucket)
    if current is None or oldest < current:
        bucket.put_bytes(
            layout.MATERIALIZE_FROM_KEY,
            json.dumps({"from": oldest.isoformat()}).encode(),
            content_type="application/json",
        )


def materialization_watermark(bucket: Bucket) -> pd.Timestamp | None:
    """The oldest event time filed since the last materialization, if any."""
    if not bucket.exists(layout.MATERIALIZE_FROM_KEY):
        return None
    return _utc(pd.Timestamp(json.loads(bucket.get_bytes(layout.MATERIALIZE_FROM_KEY))["from"]))


def clear_materialization_watermark(bucket: Bucket, loaded_from: pd.Timestamp) -> None:
    """Remove the watermark once loaded from ``loaded_from``; one an ingest lowered since stays."""
    if materialization_watermark(bucket) == loaded_from:
        bucket.delete(layout.MATERIALIZE_FROM_KEY)


def rebuild_offline_table(bucket: Bucket, table: str) -> int:
    """Write ``offline/<table>/`` as one file of every accepted batch (batch-id order).

    Rebuilt from ``accepted/`` rather than appended to, so re-ingesting a batch never
    duplicates its rows. Returns the row count.
    """
    suffix = f"/{table}.parquet"
    keys = [k for k in bucket.keys(layout.ACCEPTED_PREFIX) if k.endswith(suffix)]
    frame = pd.concat([bucket.get_parquet(k) for k in keys], ignore_index=True)
    bucket.put_parquet(layout.offline_table_key(table), frame)
    return len(frame)


def read_offline_table(bucket: Bucket, table: str) -> pd.DataFrame:
    """The offline store's ``table`` (every accepted batch); empty before the first ingest."""
    keys = [k for k in bucket.keys(layout.offline_table_prefix(table)) if k.endswith(".parquet")]
    frames = [bucket.get_parquet(k) for k in keys]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _utc(moment: pd.Timestamp) -> pd.Timestamp:
    moment = pd.Timestamp(moment)
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


def _landing_keys(bucket: Bucket) -> list[str]:
    return [k for k in bucket.keys(layout.LANDING_PREFIX) if k.endswith(".parquet")]


def _check_batch_id(batch_id: str) -> None:
    from ml.errors import UserError

    if not batch_id or "/" in batch_id or batch_id.startswith("."):
        raise UserError(f"bad batch id {batch_id!r}", "use a plain name such as 2026-05-01T00")
