"""``mlops pipeline``: training, retraining and rollback against the configured services.

In Kubernetes the ``pipeline-train`` Job and the ``pipeline-retrain`` CronJob run them (with
``MLOPS_FEATURES_BUCKET`` set, on the cluster's offline store); locally they need
``MLOPS_MLFLOW_TRACKING_URI`` pointing at a running MLflow server.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


def _prepare():
    """Settings, a reachable tracking server, and the pipeline config."""
    import mlflow

    from ml.config import load_pipeline_config
    from ml.errors import UserError
    from ml.settings import apply_process_defaults, get_settings
    from ml.tracking import require_tracking_server

    apply_process_defaults()
    settings = get_settings()
    if settings.mlflow_tracking_uri is None:
        raise UserError(
            "MLOPS_MLFLOW_TRACKING_URI is not set",
            "point it at the MLflow server (or run `mlops demo`, which starts one)",
        )
    require_tracking_server(settings.mlflow_tracking_uri)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    settings.ensure_dirs()
    return settings, load_pipeline_config()


@app.command()
def train(
    promote: Annotated[
        bool, typer.Option(help="Embedded only: make the winner champion without review.")
    ] = False,
) -> None:
    """Train every candidate on a point-in-time training set; register the winner.

    In the cluster (MLOPS_FEATURES_BUCKET set) the training set comes from the offline store on
    S3 through Feast; the winner becomes a candidate in review, the reference window goes to the
    reports bucket and the run is pushed to the Pushgateway. Embedded, the seeded dataset is
    regenerated as before.
    """
    from ml.objectstore import configured

    settings, config = _prepare()
    if configured("features"):
        _cluster_run("train", lambda: _train_from_offline_store(settings, config))
        return
    from ml.data import generate
    from ml.pipeline import register_winner, training_run

    dataset = generate(settings.n_customers, settings.seed, settings.history_days)
    outcome = training_run(settings, config, dataset)
    if outcome.winner is None:
        typer.echo("no candidate passed the gate; nothing registered")
        raise typer.Exit(1)
    registered = register_winner(outcome, settings.model_name, promote=promote)
    typer.echo(f"registered {registered.name} v{registered.version} ({outcome.winner.name})")


@app.command()
def retrain(
    reason: Annotated[str, typer.Option(help="Why retraining runs (recorded).")] = "scheduled",
    force: Annotated[bool, typer.Option(help="Retrain even without a pending trigger.")] = False,
    max_age_days: Annotated[
        float, typer.Option(help="Retrain when the champion is older than this.", min=0.01)
    ] = 30.0,
    window_days: Annotated[
        int, typer.Option(help="Train on labelled applications of the last DAYS.", min=1)
    ] = 120,
) -> None:
    """Retrain when a drift trigger is pending (or --force, or the champion is too old).

    In the cluster the winner is gated against the champion on the same recent holdout and
    registered as a candidate in review (never promoted); the trigger is consumed. Embedded,
    retraining runs on the regenerated dataset and promotes a better model as before.
    """
    from ml.objectstore import configured

    settings, config = _prepare()
    if configured("features"):
        _cluster_run(
            "retrain",
            lambda: _retrain_from_offline_store(
                settings, config, reason, force, max_age_days, window_days
            ),
        )
        return
    from ml.data import generate
    from ml.pipeline import fresh_training_set
    from ml.retrain import Trigger
    from ml.retrain import retrain as run_retrain

    dataset = generate(settings.n_customers, settings.seed, settings.history_days)
    fresh = fresh_training_set(settings, dataset)
    decision = run_retrain(Trigger(True, reason), fresh.frame, settings, config, fresh.lineage)
    typer.echo(decision.reason)


def _cluster_run(pipeline: str, run) -> None:
    """Run one cluster step and push its outcome; a failure is pushed, then re-raised."""
    from ml.pipeline_metrics import push_run

    try:
        status, decision = run()
    except BaseException as error:
        if not (isinstance(error, typer.Exit) and error.exit_code == 0):
            push_run(pipeline, "failed")
        raise
    push_run(pipeline, status, decision)
    if status != "succeeded":
        raise typer.Exit(1)


def _train_from_offline_store(settings, config) -> tuple[str, str | None]:
    from contract.objectstore import REFERENCE_KEY
    from ml.objectstore import Bucket
    from ml.pipeline import (
        keep_fair_winner,
        offline_training_set,
        record_lineage,
        reference_window,
        register_for_review,
        train_and_gate,
    )

    fresh = offline_training_set(settings)
    customers = fresh.ingested.tables["customers"]
    outcome = train_and_gate(fresh.frame, settings, config, fresh.lineage)
    keep_fair_winner(outcome, fresh.frame, customers, settings, config)
    record_lineage(settings, fresh.ingested, fresh.entities, fresh.frame, outcome)
    for note in outcome.notes:
        typer.echo(note)
    if outcome.winner is None:
        typer.echo(
            "no candidate passed both the performance and the fairness gate; nothing registered"
        )
        return "failed", "rejected_by_gate"
    registered = register_for_review(outcome, settings, fresh.frame, customers)
    reference = reference_window(fresh.frame, outcome, settings, config)
    Bucket.for_role("reports").put_parquet(REFERENCE_KEY, reference)
    typer.echo(
        f"registered {registered.name} v{registered.version} ({outcome.winner.name}) "
        f"as a candidate in review; reference window: {len(reference)} rows"
    )
    return "succeeded", "candidate_registered"


def _retrain_from_offline_store(
    settings, config, reason, force, max_age_days, window_days
) -> tuple[str, str | None]:
    import pandas as pd

    from ml.objectstore import Bucket
    from ml.pipeline import offline_training_set, record_lineage
    from ml.retrain import (
        Trigger,
        champion_age_days,
        consume_trigger,
        pending_trigger,
        retrain_for_review,
    )

    reports = Bucket.for_role("reports")
    pending = pending_trigger(reports)
    age = champion_age_days(settings.model_name)
    if pending is not None:
        reason = f"drift trigger: {pending.get('reason', 'drift detected')}"
    elif age is not None and age > max_age_days:
        reason = f"champion is {age:.1f} days old (max {max_age_days})"
    elif not force:
        typer.echo("nothing to do: no pending trigger and the champion is fresh")
        raise typer.Exit(0)
    since = pd.Timestamp.now(tz="UTC") - pd.Timedelta(days=window_days)
    fresh = offline_training_set(settings, since=since)
    decision, outcome = retrain_for_review(
        Trigger(True, reason),
        fresh.frame,
        settings,
        config,
        fresh.lineage,
        fresh.ingested.tables["customers"],
    )
    record_lineage(settings, fresh.ingested, fresh.entities, fresh.frame, outcome)
    if pending is not None:
        consume_trigger(reports)
    typer.echo(decision.reason)
    return "succeeded", "candidate_registered" if decision.new_version else "rejected_by_gate"
