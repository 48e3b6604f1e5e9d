"""Training-set manifests: what a training set was built from, and the chain back from a model.

A manifest records the feature service (name, version tag, feature refs), the content hash of
every source table and of the whole validated snapshot, the point-in-time query (entity frame
hash, columns, as-of bounds, the views' TTLs) and the training set's own hash. The inputs are
archived by content hash (``<archive>/<sha256>.parquet``), so a manifest is enough to rebuild
its training set later (see :mod:`ml.features.rebuild`). The manifest is written next to the
archive and logged to each MLflow run trained on it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ml.data.snapshot import frame_sha256
from ml.errors import UserError
from ml.features import definitions
from ml.features.store import SOURCE_TABLES

MANIFEST_ARTIFACT = "features/training_set_manifest.json"
MANIFEST_DIR = "training_sets"
TAG_PREFIX = "features."


@dataclass(frozen=True)
class TrainingSetManifest:
    """Everything needed to explain and rebuild one training set."""

    feature_service: str
    feature_service_version: str
    feature_refs: list[str]
    ttl_seconds: dict[str, int]
    snapshot_sha256: str  # the whole validated snapshot (all tables)
    source_sha256: dict[str, str]  # table → frame_sha256 of the rows fed to Feast
    entity_df_sha256: str
    entity_columns: list[str]
    as_of_start: str  # earliest and latest label event time in the entity frame
    as_of_end: str
    training_set_sha256: str
    rows: int
    feast_version: str
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def to_dict(self) -> dict:
        """The manifest as plain JSON-able data."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingSetManifest:
        """Read a manifest written by :meth:`to_dict` (unknown keys are ignored)."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def tags(self) -> dict[str, str]:
        """Short MLflow tags that make runs searchable by their training set."""
        return {
            f"{TAG_PREFIX}service": self.feature_service,
            f"{TAG_PREFIX}service_version": self.feature_service_version,
            f"{TAG_PREFIX}training_set_sha256": self.training_set_sha256,
            f"{TAG_PREFIX}entity_df_sha256": self.entity_df_sha256,
            f"{TAG_PREFIX}as_of_end": self.as_of_end,
        }


def service_contract(service_name: str) -> tuple[str, list[str], dict[str, int]]:
    """(version tag, ``view:feature`` refs, TTL seconds per view) of a feature service."""
    service = definitions.FEATURE_SERVICES.get(service_name)
    if service is None:
        known = sorted(definitions.FEATURE_SERVICES)
        raise UserError(f"unknown feature service {service_name!r}", f"use one of {known}")
    refs = [
        f"{p.name_to_use()}:{f.name}" for p in service.feature_view_projections for f in p.features
    ]
    ttls = {
        view.name: int(view.ttl.total_seconds())
        for view in definitions.FEATURE_VIEWS
        if any(p.name == view.name for p in service.feature_view_projections)
    }
    return service.tags.get("version", "unversioned"), refs, ttls


def archive_frame(frame: pd.DataFrame, archive_dir: Path) -> str:
    """Store ``frame`` under its content hash (once) and return the hash."""
    sha = frame_sha256(frame)
    path = archive_dir / f"{sha}.parquet"
    if not path.exists():
        archive_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        frame.to_parquet(partial, index=False)
        partial.replace(path)  # atomic: a reader never sees half a snapshot
    return sha


def load_archived(archive_dir: Path, sha: str) -> pd.DataFrame:
    """Read an archived frame and check that its content still has hash ``sha``."""
    path = archive_dir / f"{sha}.parquet"
    if not path.exists():
        raise UserError(
            f"snapshot {sha[:12]} is not in the archive {archive_dir}",
            "restore the archive (or pass --archive) from where the training ran",
        )
    frame = pd.read_parquet(path)
    if frame_sha256(frame) != sha:
        raise UserError(f"archived snapshot {path} is corrupt (hash mismatch)", "restore it")
    return frame


def record_training_set(
    archive_dir: Path,
    tables: dict[str, pd.DataFrame],
    entity_df: pd.DataFrame,
    training_set: pd.DataFrame,
    service_name: str,
    snapshot_sha256: str,
) -> TrainingSetManifest:
    """Archive the inputs of ``training_set`` and write its manifest.

    Args:
        archive_dir: content-addressed archive (e.g. ``settings.data_dir / "snapshots"``).
        tables: the validated tables given to ``store.ingest`` (only the sources are archived).
        entity_df: the entity frame of the point-in-time query.
        training_set: what ``store.training_set`` returned for it.
        service_name: the feature service queried.
        snapshot_sha256: hash of the whole validated snapshot (``Ingested.snapshot_sha256``).

    Returns:
        The manifest, also written to ``<archive_dir>/training_sets/<training_set_sha256>.json``.
    """
    import feast

    version, refs, ttls = service_contract(service_name)
    times = entity_df["event_timestamp"]
    manifest = TrainingSetManifest(
        feature_service=service_name,
        feature_service_version=version,
        feature_refs=refs,
        ttl_seconds=ttls,
        snapshot_sha256=snapshot_sha256,
        source_sha256={name: archive_frame(tables[name], archive_dir) for name in SOURCE_TABLES},
        entity_df_sha256=archive_frame(entity_df, archive_dir),
        entity_columns=list(entity_df.columns),
        as_of_start=times.min().isoformat(),
        as_of_end=times.max().isoformat(),
        training_set_sha256=frame_sha256(training_set),
        rows=len(training_set),
        feast_version=feast.__version__,
    )
    write_manifest(manifest, archive_dir / MANIFEST_DIR / f"{manifest.training_set_sha256}.json")
    return manifest


def write_manifest(manifest: TrainingSetManifest, path: Path) -> Path:
    """Write ``manifest`` as indented JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(manifest.to_dict(), indent=1, sort_keys=True))
    return path


def log_manifest(manifest: TrainingSetManifest, run_id: str) -> None:
    """Attach the manifest (artifact + ``features.*`` tags) to an MLflow run."""
    from mlflow import MlflowClient

    client = MlflowClient()
    client.log_dict(run_id, manifest.to_dict(), MANIFEST_ARTIFACT)
    for key, value in manifest.tags().items():
        client.set_tag(run_id, key, value)


def run_manifest(run_id: str) -> TrainingSetManifest | None:
    """The manifest logged to ``run_id``, or None when the run has none."""
    import mlflow

    try:
        data = mlflow.artifacts.load_dict(f"runs:/{run_id}/{MANIFEST_ARTIFACT}")
    except Exception:  # MLflow raises several types for a missing artifact
        return None
    return TrainingSetManifest.from_dict(data)


@dataclass(frozen=True)
class LineageChain:
    """Model version → run → feature service → training set → source snapshots."""

    model: str
    version: str
    aliases: list[str]
    run_id: str
    run_name: str
    tags: dict[str, str]  # the version's lineage.* tags
    manifest: TrainingSetManifest | None

    def lines(self) -> list[str]:
        """Human-readable chain, one fact per line."""
        lines = [
            f"model version     {self.model} v{self.version}"
            + (f" (aliases: {', '.join(self.aliases)})" if self.aliases else ""),
            f"run               {self.run_id} ({self.run_name})",
        ]
        m = self.manifest
        service = m.feature_service if m else self.tags.get("lineage.feature_service", "?")
        version = f" version {m.feature_service_version}" if m else ""
        lines.append(f"feature service   {service}{version}")
        for ref in m.feature_refs if m else []:
            lines.append(f"  feature         {ref}")
        training = m.training_set_sha256 if m else self.tags.get("lineage.training_set_sha256")
        lines.append(f"training set      sha256 {training}")
        if m:
            lines.append(f"  rows            {m.rows}")
            lines.append(f"  entity df       sha256 {m.entity_df_sha256}")
            lines.append(f"  as of           {m.as_of_start} .. {m.as_of_end}")
            lines.append(f"  ttl             {m.ttl_seconds}")
        snapshot = m.snapshot_sha256 if m else self.tags.get("lineage.snapshot_sha256")
        lines.append(f"source snapshot   sha256 {snapshot}")
        for table, sha in (m.source_sha256 if m else {}).items():
            lines.append(f"  {table:<15} sha256 {sha}")
        if m is None:
            lines.append("(no training-set manifest on this run: tags only)")
        return lines


def lineage_chain(model: str, version: str) -> LineageChain:
    """Follow a registered model version back to its sources via MLflow.

    Args:
        model: registered model name.
        version: a version number, or an alias such as ``champion``.

    Raises:
        UserError: the model or version does not exist in the tracking server.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        mv = (
            client.get_model_version(model, version)
            if version.isdigit()
            else client.get_model_version_by_alias(model, version)
        )
        run = client.get_run(mv.run_id)
    except MlflowException as error:
        raise UserError(
            f"no model version {model}/{version}: {error.message.splitlines()[0]}",
            "check `--model`, the version, and MLOPS_MLFLOW_TRACKING_URI",
        ) from None
    lineage_tags = {k: v for k, v in (mv.tags or {}).items() if k.startswith("lineage.")}
    return LineageChain(
        model=model,
        version=str(mv.version),
        aliases=list(getattr(mv, "aliases", []) or []),
        run_id=run.info.run_id,
        run_name=run.info.run_name or "",
        tags=lineage_tags,
        manifest=run_manifest(run.info.run_id),
    )
