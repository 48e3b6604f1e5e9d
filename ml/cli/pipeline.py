"""``mlops pipeline``: training, retraining and rollback against the configured services.

In Kubernetes these are what the retraining CronJob and the drift-triggered Job run; locally
they need ``MLOPS_MLFLOW_TRACKING_URI`` pointing at a running MLflow server.
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
    promote: Annotated[bool, typer.Option(help="Make the winner champion.")] = True,
) -> None:
    """Train every candidate on a fresh point-in-time training set; register the winner."""
    from ml.data import generate
    from ml.pipeline import register_winner, training_run

    settings, config = _prepare()
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
) -> None:
    """Retrain on fresh data and promote only if the gate passes against the champion."""
    from ml.data import generate
    from ml.pipeline import fresh_training_set
    from ml.retrain import Trigger
    from ml.retrain import retrain as run_retrain

    settings, config = _prepare()
    dataset = generate(settings.n_customers, settings.seed, settings.history_days)
    fresh = fresh_training_set(settings, dataset)
    decision = run_retrain(Trigger(True, reason), fresh.frame, settings, config, fresh.lineage)
    typer.echo(decision.reason)


@app.command()
def rollback() -> None:
    """Restore the previous champion (recorded in MLflow and the audit log)."""
    from ml import registry
    from ml.errors import UserError
    from ml.governance import audit

    settings, _ = _prepare()
    try:
        restored = registry.rollback(settings.model_name)
    except LookupError as error:
        raise UserError(
            str(error), "nothing to roll back to; promote a new version first"
        ) from None
    audit.append(
        "rollback",
        audit.model_subject(settings.model_name, restored),
        "operator",
        {"reason": "manual rollback"},
        path=settings.audit_log,
    )
    typer.echo(f"champion is v{restored} again")
