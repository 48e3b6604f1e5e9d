"""Rebuild the training set of a past run, bit for bit, from its manifest and the archive.

The archive holds the exact source rows and entity frame (by content hash); the rebuild feeds
them to a fresh embedded Feast repository with today's definitions and checks that the result
has the recorded ``frame_sha256``. A different hash means the definitions or the engine changed
in a way that changes training data, which is exactly what this is meant to catch.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ml.data.snapshot import frame_sha256
from ml.errors import UserError
from ml.features import store as feature_store
from ml.features.lineage import TAG_PREFIX, TrainingSetManifest, load_archived, run_manifest


@dataclass(frozen=True)
class Rebuilt:
    """A rebuilt training set and whether it matches the recorded one."""

    manifest: TrainingSetManifest
    frame: pd.DataFrame
    sha256: str
    run_id: str | None = None

    @property
    def matches(self) -> bool:
        return self.sha256 == self.manifest.training_set_sha256


def snapshot_archives(settings) -> list[Path]:
    """The archives a manifest's inputs may be in on this machine: the build's own, then the
    embedded platform's steps' (the demo trains there, as a pod would on its own disk)."""
    from ml.embedded import step_settings

    return [settings.data_dir / "snapshots", step_settings(settings).data_dir / "snapshots"]


def archive_holding(manifest: TrainingSetManifest, archives: list[Path]) -> Path:
    """The first of ``archives`` holding every input of ``manifest`` (else the first, so the
    error names what is missing where the user would look)."""
    needed = [*manifest.source_sha256.values(), manifest.entity_df_sha256]
    for archive in archives:
        if all((archive / f"{sha}.parquet").exists() for sha in needed):
            return archive
    return archives[0]


def rebuild_training_set(
    manifest: TrainingSetManifest, archive_dir: Path, work_dir: Path | None = None
) -> Rebuilt:
    """Recompute the training set described by ``manifest`` from archived inputs.

    Args:
        manifest: what the original training set was built from.
        archive_dir: the content-addressed archive the manifest's hashes refer to.
        work_dir: where to put the throwaway Feast repo (default: a temporary folder).
    """
    tables = {
        name: load_archived(archive_dir, sha) for name, sha in manifest.source_sha256.items()
    }
    entity_df = load_archived(archive_dir, manifest.entity_df_sha256)
    scratch = Path(tempfile.mkdtemp(prefix="rebuild-", dir=work_dir))
    try:
        feature_store.prepare_repo(scratch, "embedded")
        feature_store.ingest(scratch, tables)
        store = feature_store.open_store(scratch)
        feature_store.apply(store)
        frame = feature_store.training_set(store, entity_df, manifest.feature_service)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return Rebuilt(manifest, frame, frame_sha256(frame))


def run_as_of(as_of: datetime) -> tuple[str, TrainingSetManifest]:
    """The latest MLflow run started at or before ``as_of`` that has a training-set manifest.

    Raises:
        UserError: no such run in the tracking server.
    """
    from mlflow import MlflowClient

    client = MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    stamp = int(_utc(as_of).timestamp() * 1000)
    runs = client.search_runs(
        experiments,
        filter_string=f"attributes.start_time <= {stamp}",
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    for run in runs:
        if f"{TAG_PREFIX}training_set_sha256" in run.data.tags:
            manifest = run_manifest(run.info.run_id)
            if manifest is not None:
                return run.info.run_id, manifest
    raise UserError(
        f"no training run with a feature manifest started at or before {_utc(as_of).isoformat()}",
        "pick a later --as-of, or check MLOPS_MLFLOW_TRACKING_URI",
    )


def rebuild_as_of(as_of: datetime, archive_dir: Path, work_dir: Path | None = None) -> Rebuilt:
    """Rebuild the training set of the latest run started at or before ``as_of``."""
    run_id, manifest = run_as_of(as_of)
    rebuilt = rebuild_training_set(manifest, archive_dir, work_dir)
    return Rebuilt(rebuilt.manifest, rebuilt.frame, rebuilt.sha256, run_id)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
