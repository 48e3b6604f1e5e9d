"""Where things live in the object store: bucket roles and key layout, shared by every workload.

Buckets by role (names come from the platform, through ``MLOPS_<ROLE>_BUCKET``):

* ``features``: ``landing/`` raw batches from the upstream systems, ``offline/<table>/`` the
  validated Parquet the Feast file offline store reads, ``quarantine/`` rejected rows.
* ``reports``: ``predictions/`` prediction-log batches shipped by serving pods,
  ``monitoring/`` the training reference window and the drift monitor's verdicts,
  ``triggers/`` retraining requests, ``site/`` the published report site.
* ``artifacts``: MLflow's artifact store (only the tracking server touches it).
"""

from __future__ import annotations

BUCKETS = ("artifacts", "features", "reports")

# features bucket
LANDING_PREFIX = "landing/"
PROCESSED_PREFIX = "processed/"
OFFLINE_PREFIX = "offline/"
QUARANTINE_PREFIX = "quarantine/"


def offline_table_prefix(table: str) -> str:
    """Folder of one offline-store table (a Feast FileSource reads every Parquet file in it)."""
    return f"{OFFLINE_PREFIX}{table}/"


# reports bucket
PREDICTIONS_PREFIX = "predictions/"
REFERENCE_KEY = "monitoring/reference.parquet"
DRIFT_PREFIX = "monitoring/drift/"
DRIFT_LATEST_KEY = "monitoring/drift/latest.json"
RETRAIN_TRIGGER_KEY = "triggers/retrain.json"
SITE_PREFIX = "site/"


def s3_url(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"
