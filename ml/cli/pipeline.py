"""``mlops pipeline``: training and retraining on the platform's feature store.

The ``pipeline-train`` Job and the ``pipeline-retrain`` CronJob run them in the cluster; the
embedded demo runs the same commands against its embedded platform (``ml.embedded``). Both need
``MLOPS_MLFLOW_TRACKING_URI`` and the features and reports buckets: the training set always
comes from the offline store through Feast, and a winner always becomes a candidate in review
(only the governance state machine moves the ``champion`` alias).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(no_args_is_help=True)

JsonOpt = Annotated[
    Path | None, typer.Option("--json", help="Also write the outcome as JSON to this file.")
]


def _prepare():
    """Settings, a reachable tracking server, the buckets, and the pipeline config."""
    import mlflow

    from ml.config import load_pipeline_config
    from ml.errors import UserError
    from ml.objectstore import bucket_name
    from ml.settings import apply_process_defaults, get_settings
    from ml.tracking import require_tracking_server

    apply_process_defaults()
    settings = get_settings()
    if settings.mlflow_tracking_uri is None:
        raise UserError(
            "MLOPS_MLFLOW_TRACKING_URI is not set",
            "point it at the MLflow server (or run `mlops demo`, which starts one)",
        )
    for role in ("features", "reports"):
        bucket_name(role)  # one line naming the missing variable, before any work
    require_tracking_server(settings.mlflow_tracking_uri)
    mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
    settings.ensure_dirs()
    return settings, load_pipeline_config()


@app.command()
def train(
    runners_up: Annotated[
        int,
        typer.Option(
            min=0, max=5, help="Also register the next N candidates that pass both gates."
        ),
    ] = 0,
    json_out: JsonOpt = None,
) -> None:
    """Train every candidate on a point-in-time training set; register the winner for review.

    The training set comes from the offline store on S3 through Feast; the winner (the best
    candidate passing the performance and the fairness gate) becomes a candidate in review with
    its model card, the reference window goes to the reports bucket and the run is pushed to the
    Pushgateway. ``--runners-up`` registers challengers for an A/B test the same way.
    """
    settings, config = _prepare()
    _cluster_run(
        "train", lambda: _train_from_offline_store(settings, config, runners_up, json_out)
    )


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
    json_out: JsonOpt = None,
) -> None:
    """Retrain when a drift trigger is pending (or --force, or the champion is too old).

    The winner is gated against the champion on the same recent holdout and registered as a
    candidate in review (never promoted); the trigger is consumed.
    """
    settings, config = _prepare()
    _cluster_run(
        "retrain",
        lambda: _retrain_from_offline_store(
            settings, config, reason, force, max_age_days, window_days, json_out
        ),
    )


def _write_json(path: Path | None, outcome: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(outcome, indent=2, sort_keys=True, default=str) + "\n")


def _outcome_json(outcome, training_rows: int) -> dict[str, Any]:
    """What a training run decided, for ``--json`` (the demo's summary reads it)."""
    return {
        "training_rows": training_rows,
        "candidates": {
            c.name: {"run_id": c.run_id, "metrics": {k: round(v, 6) for k, v in c.metrics.items()}}
            for c in outcome.candidates
        },
        "gate": {name: d.summary() for name, d in outcome.decisions.items()},
        "winner": outcome.winner.name if outcome.winner else None,
        "notes": list(outcome.notes),
        "lineage": outcome.lineage.tags() if outcome.lineage else {},
    }


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


def _train_from_offline_store(
    settings, config, runners_up: int = 0, json_out: Path | None = None
) -> tuple[str, str | None]:
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
    challengers = keep_fair_winner(outcome, fresh.frame, customers, settings, config, runners_up)
    record_lineage(settings, fresh.ingested, fresh.entities, fresh.frame, outcome)
    result = _outcome_json(outcome, len(fresh.frame))
    for note in outcome.notes:
        typer.echo(note)
    if outcome.winner is None:
        _write_json(json_out, {**result, "registered": {}})
        typer.echo(
            "no candidate passed both the performance and the fairness gate; nothing registered"
        )
        return "failed", "rejected_by_gate"
    registered = {}
    for candidate in [outcome.winner, *challengers]:
        version = register_for_review(
            outcome, settings, fresh.frame, customers, candidate=candidate
        ).version
        registered[str(version)] = candidate.name
        typer.echo(f"registered {settings.model_name} v{version} ({candidate.name}) for review")
    reference = reference_window(fresh.frame, outcome, settings, config)
    Bucket.for_role("reports").put_parquet(REFERENCE_KEY, reference)
    _write_json(json_out, {**result, "registered": registered})
    typer.echo(f"reference window: {len(reference)} rows")
    return "succeeded", "candidate_registered"


def _retrain_from_offline_store(
    settings, config, reason, force, max_age_days, window_days, json_out: Path | None = None
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
        _write_json(json_out, {"triggered": False, "reason": "no pending trigger"})
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
    _write_json(json_out, {**decision.to_dict(), **_outcome_json(outcome, len(fresh.frame))})
    typer.echo(decision.reason)
    return "succeeded", "candidate_registered" if decision.new_version else "rejected_by_gate"
