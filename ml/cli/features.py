"""`mlops features ...`: lineage, reproducible rebuilds and store operations (Feast)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


def _settings():
    from ml.settings import apply_process_defaults, get_settings

    apply_process_defaults()
    return get_settings()


def _use_tracking(settings) -> None:
    """Point MLflow at MLOPS_MLFLOW_TRACKING_URI, else at MLflow's own MLFLOW_TRACKING_URI."""
    import os

    import mlflow

    from ml.errors import UserError

    uri = settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise UserError(
            "no MLflow tracking server configured",
            "set MLOPS_MLFLOW_TRACKING_URI (or MLFLOW_TRACKING_URI)",
        )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def _parse_time(value: str) -> datetime:
    from ml.errors import UserError

    if value == "now":
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(
            f"--as-of {value!r} is not a time", "use ISO 8601, e.g. 2026-05-01T12:00:00Z, or now"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@app.command()
def lineage(
    version: Annotated[str, typer.Argument(help="Model version number or alias (champion).")],
    model: Annotated[str | None, typer.Option(help="Registered model name.")] = None,
) -> None:
    """Print model version → run → feature service → training set → source snapshots."""
    from ml.features.lineage import lineage_chain

    settings = _settings()
    _use_tracking(settings)
    for line in lineage_chain(model or settings.model_name, version).lines():
        typer.echo(line)


@app.command()
def rebuild(
    as_of: Annotated[
        str, typer.Option("--as-of", help="ISO time; rebuilds the latest run started by then.")
    ] = "now",
    archive: Annotated[
        Path | None, typer.Option(help="Snapshot archive (default: <build>/demo/data/snapshots).")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the rebuilt set here (Parquet).")] = None,
) -> None:
    """Rebuild a past run's training set from archived snapshots; fail unless the hash matches."""
    from ml.errors import UserError
    from ml.features.rebuild import rebuild_as_of

    settings = _settings()
    _use_tracking(settings)
    rebuilt = rebuild_as_of(_parse_time(as_of), archive or settings.data_dir / "snapshots")
    typer.echo(f"run          {rebuilt.run_id}")
    typer.echo(f"recorded     {rebuilt.manifest.training_set_sha256}")
    typer.echo(f"rebuilt      {rebuilt.sha256} ({len(rebuilt.frame)} rows)")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        rebuilt.frame.to_parquet(out, index=False)
        typer.echo(f"written      {out}")
    if not rebuilt.matches:
        raise UserError(
            "rebuilt training set differs from the recorded one",
            "the definitions or the Feast version changed; compare with `features lineage`",
        )
    typer.echo("identical    yes")


@app.command()
def apply(
    repo: Annotated[
        Path | None, typer.Option(help="Feast repo folder with feature_store.yaml.")
    ] = None,
) -> None:
    """Register the feature definitions in the repo's registry (like `feast apply`)."""
    from ml.features import store as feature_store

    settings = _settings()
    store = feature_store.open_store(repo or settings.feature_repo_dir)
    feature_store.apply(store)
    typer.echo(f"applied definitions to project {store.project}")


def _backfill(store, stop) -> None:
    """Load rows ingested since the last run whose event times are older than where the
    incremental run started (a late or historical batch), back to the oldest TTL at most."""
    from ml import objectstore
    from ml.features import store as feature_store

    if not objectstore.configured("features"):
        return
    from ml.ingest import clear_materialization_watermark, materialization_watermark

    bucket = objectstore.Bucket.for_role("features")
    watermark = materialization_watermark(bucket)
    if watermark is None:
        return
    oldest_served = stop - max(view.ttl for view in store.list_feature_views())
    start = max(watermark.to_pydatetime(), oldest_served)
    typer.echo(f"backfill: rows ingested since the last run go back to {watermark.isoformat()}")
    feature_store.materialize(store, start, stop)
    clear_materialization_watermark(bucket, watermark)


@app.command()
def materialize(
    repo: Annotated[
        Path | None, typer.Option(help="Feast repo folder (default: MLOPS_FEATURE_REPO).")
    ] = None,
    days: Annotated[
        int | None,
        typer.Option(help="Reload values of the last DAYS instead of continuing incrementally."),
    ] = None,
    end: Annotated[str, typer.Option(help="End of the window (ISO time or now).")] = "now",
) -> None:
    """Load new feature values from the offline store into the online store.

    Incremental by default: each view continues where the last run ended. Pushes
    mlops_feature_materialized_until_timestamp_seconds per view when MLOPS_PUSHGATEWAY_URL is set.
    """
    from datetime import timedelta

    from ml.features import store as feature_store
    from ml.pipeline_metrics import push_materialized

    settings = _settings()
    store = feature_store.open_store(repo or settings.feature_repo_dir)
    stop = _parse_time(end)
    if days is None:
        until = feature_store.materialize_incremental(store, stop)
        _backfill(store, stop)
    else:
        feature_store.materialize(store, stop - timedelta(days=days), stop)
        until = {view.name: stop for view in store.list_feature_views()}
    push_materialized({view: moment.timestamp() for view, moment in until.items()})
    typer.echo(f"materialized up to {stop.isoformat()}: {', '.join(sorted(until))}")
