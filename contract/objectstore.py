"""Where things live in the object store: bucket roles and key layout, shared by every workload.

Buckets by role (names come from the platform, through ``MLOPS_<ROLE>_BUCKET``):

* ``features``: ``landing/`` raw batches from the upstream systems, ``processed/`` the same
  once ingested, ``accepted/<batch>/`` and ``quarantine/<batch>/`` their validated and rejected
  rows, ``offline/<table>/`` the validated Parquet the Feast file offline store reads.
* ``reports``: ``predictions/`` prediction-log batches shipped by serving pods,
  ``monitoring/`` the training reference window and the drift monitor's verdicts,
  ``triggers/`` retraining requests, ``site/`` the published report site, ``audit/`` the
  governance audit log.
* ``artifacts``: MLflow's artifact store, deduplicated (``ml.experiments.dedup_store``): only
  the tracking server (and the blob collector, ``mlops experiments gc``) touches it.
"""

from __future__ import annotations

BUCKETS = ("artifacts", "features", "reports")

# features bucket
LANDING_PREFIX = "landing/"
PROCESSED_PREFIX = "processed/"
OFFLINE_PREFIX = "offline/"
QUARANTINE_PREFIX = "quarantine/"
ACCEPTED_PREFIX = "accepted/"


def offline_table_prefix(table: str) -> str:
    """Folder of one offline-store table (a Feast FileSource reads every Parquet file in it)."""
    return f"{OFFLINE_PREFIX}{table}/"


def offline_table_key(table: str) -> str:
    """The one Parquet file of an offline table: every accepted batch, compacted by ingestion.

    One file, not one per batch: Feast 0.67's file offline store deduplicates a multi-file
    (multi-partition) source with a shuffle that loses the time order and joins stale values.
    """
    return f"{offline_table_prefix(table)}{table}.parquet"


# Written by ingestion, consumed by materialization: the oldest event time of feature rows filed
# since the last materialization. A batch whose events are older than where incremental
# materialization has got to (a backfill, a late delivery) is loaded from there.
MATERIALIZE_FROM_KEY = "state/materialize-from.json"


def accepted_batch_key(batch_id: str, table: str) -> str:
    """The accepted rows of one batch, kept so the offline table can be rebuilt idempotently."""
    return f"{ACCEPTED_PREFIX}{batch_id}/{table}.parquet"


# reports bucket
PREDICTIONS_PREFIX = "predictions/"
REFERENCE_KEY = "monitoring/reference.parquet"
DRIFT_PREFIX = "monitoring/drift/"
DRIFT_LATEST_KEY = "monitoring/drift/latest.json"
RETRAIN_TRIGGER_KEY = "triggers/retrain.json"
SITE_PREFIX = "site/"
# The governance audit log (hash-chained JSONL) and its head record; see ml.governance.audit.
# It lives in the reports bucket, which the AWS stacks put under S3 Object Lock.
AUDIT_BUCKET = "reports"
AUDIT_LOG_KEY = "audit/audit.jsonl"
AUDIT_HEAD_KEY = "audit/audit.jsonl.head"


def s3_url(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


# artifacts bucket: the tracking server's --artifacts-destination and what `mlops experiments gc`
# sweeps; the cas+ scheme selects the deduplicated store (pyproject's mlflow.artifact_repository).
ARTIFACTS_SCHEME = "cas+s3"
LOCAL_ARTIFACTS_SCHEME = "cas+file"  # the embedded mode's (ml/tracking.py)


def artifact_destination(bucket: str) -> str:
    return f"{ARTIFACTS_SCHEME}://{bucket}/"


def artifact_bucket(destination: str) -> str:
    """The bucket an :func:`artifact_destination` URI names."""
    scheme, _, rest = destination.partition("://")
    if scheme != ARTIFACTS_SCHEME or not rest.strip("/"):
        raise ValueError(f"{destination!r} is not {ARTIFACTS_SCHEME}://<bucket>/")
    return rest.split("/", 1)[0]
