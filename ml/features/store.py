"""Operate the Feast feature store: prepare the repo, ingest, apply, train sets, serve online.

The embedded mode keeps the registry, the offline Parquet files and the SQLite online store in
one folder (``Settings.feature_repo_dir``). Other environments use the same functions with a
different ``feature_store.yaml`` (see ``environments/``).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pandas as pd
from feast import FeatureService, FeatureStore

from ml.data.generate import REQUEST_FEATURES
from ml.errors import UserError
from ml.features import definitions

ENVIRONMENTS_DIR = Path(__file__).parent / "environments"
# Tables that feed feature views; they are written as Parquet into the repo's data/ folder.
SOURCE_TABLES = ("customer_profile", "customer_transactions")


def prepare_repo(repo_dir: Path, environment: str = "embedded") -> Path:
    """Create ``repo_dir`` with the environment's ``feature_store.yaml`` and a data/ folder."""
    template = ENVIRONMENTS_DIR / f"{environment}.yaml"
    if not template.exists():
        known = sorted(p.stem for p in ENVIRONMENTS_DIR.glob("*.yaml"))
        raise UserError(f"no feature store environment {environment!r}", f"use one of {known}")
    (repo_dir / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, repo_dir / "feature_store.yaml")
    return repo_dir


def ingest(repo_dir: Path, tables: dict[str, pd.DataFrame]) -> dict[str, Path]:
    """Write the validated source tables where the feature views' sources point."""
    paths: dict[str, Path] = {}
    for name in SOURCE_TABLES:
        path = repo_dir / "data" / f"{name}.parquet"
        tables[name].to_parquet(path, index=False)
        paths[name] = path
    return paths


def open_store(repo_dir: Path) -> FeatureStore:
    """Open the feature store whose ``feature_store.yaml`` is in ``repo_dir``."""
    if not (repo_dir / "feature_store.yaml").exists():
        raise UserError(
            f"no feature_store.yaml in {repo_dir}", "run `mlops demo` (or prepare the repo) first"
        )
    return FeatureStore(repo_path=str(repo_dir))


def apply(store: FeatureStore) -> None:
    """Register every definition (idempotent, like ``feast apply``)."""
    store.apply(definitions.ALL_OBJECTS)


def feature_service(store: FeatureStore, name: str) -> FeatureService:
    try:
        return store.get_feature_service(name)
    except Exception:  # Feast raises its own FeatureServiceNotFoundException subclasses
        known = sorted(definitions.FEATURE_SERVICES)
        raise UserError(f"unknown feature service {name!r}", f"use one of {known}") from None


def model_features(service_name: str) -> list[str]:
    """The model's input columns: the service's features plus the request fields."""
    service = definitions.FEATURE_SERVICES.get(service_name)
    if service is None:
        known = sorted(definitions.FEATURE_SERVICES)
        raise UserError(f"unknown feature service {service_name!r}", f"use one of {known}")
    names = [
        f.name for projection in service.feature_view_projections for f in projection.features
    ]
    return [*names, *REQUEST_FEATURES]


def training_set(store: FeatureStore, entity_df: pd.DataFrame, service_name: str) -> pd.DataFrame:
    """Point-in-time correct features for each row of ``entity_df``.

    ``entity_df`` needs ``customer_id``, ``event_timestamp`` and the request fields; any other
    columns (ids, labels) are carried through. Rows come back sorted by ``application_id`` when
    present, so that the result (and its hash) does not depend on Feast's internal order.
    """
    service = feature_service(store, service_name)
    frame = store.get_historical_features(entity_df=entity_df, features=service).to_df()
    key = "application_id" if "application_id" in frame else "event_timestamp"
    frame = frame.sort_values(key, kind="stable").reset_index(drop=True)
    return frame[[*entity_df.columns, *_new_columns(frame, entity_df)]]


def _new_columns(frame: pd.DataFrame, entity_df: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in entity_df.columns]


def materialize(store: FeatureStore, start: datetime, end: datetime) -> None:
    """Load feature values with event times in [start, end] into the online store."""
    store.materialize(start_date=start, end_date=end)


def online_features(store: FeatureStore, rows: Sequence[dict], service_name: str) -> pd.DataFrame:
    """Online feature vectors for ``rows`` (each with ``customer_id`` and request fields)."""
    service = feature_service(store, service_name)
    return store.get_online_features(features=service, entity_rows=list(rows)).to_df()
