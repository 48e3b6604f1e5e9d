"""``mlops experiments``: compare runs with significance tests, tune, search runs at scale,
reproduce a run.

A thin layer over :mod:`ml.experiments`; MLflow is found as by the governance commands (the
configured tracking server, else the embedded demo's store).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="Run ids; the first is the baseline.")],
    threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Decision threshold (default: pipeline config)."),
    ] = None,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.5, help="Family-wise alpha.")] = 0.05,
    resamples: Annotated[int, typer.Option(min=200, help="Bootstrap resamples.")] = 2000,
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    log: Annotated[bool, typer.Option(help="Log the report to MLflow.")] = True,
) -> None:
    """Test runs against the first on their shared holdout; write and log an HTML report.

    DeLong for ROC AUC, a paired bootstrap for PR AUC, Brier and log loss, McNemar for accuracy
    at the threshold; Holm's correction over all of them.
    """
    from ml.cli.governance import _connect
    from ml.config import load_pipeline_config
    from ml.experiments.compare import compare_runs
    from ml.experiments.report import log_report, write_report
    from ml.settings import get_settings

    _connect()
    cutoff = load_pipeline_config().decision_threshold if threshold is None else threshold
    comparison = compare_runs(runs, cutoff, alpha, resamples)
    folder = out or get_settings().build / "experiments" / "compare" / "-".join(
        r[:8] for r in runs
    )
    page = write_report(comparison, folder)
    logged = log_report(comparison, folder) if log else None
    if as_json:
        result = {**comparison.to_dict(), "report": str(page), "mlflow_run_id": logged}
        typer.echo(json.dumps(result, indent=1))
        return
    names = {r.run_id: r.name for r in comparison.runs}
    for pair in comparison.pairs:
        typer.echo(f"{names[pair.challenger]} vs {names[pair.baseline]}:")
        for t in pair.tests:
            verdict = "significant" if t.significant else "not significant"
            typer.echo(
                f"  {t.metric:<9} {t.difference:+.4f} [{t.ci_low:+.4f}, {t.ci_high:+.4f}]"
                f"  p={t.p_value:.4g} holm={t.p_adjusted:.4g}  {verdict} ({t.method})"
            )
    typer.echo(f"report: {page}" + (f" (MLflow run {logged})" if logged else ""))


@app.command()
def simulate(
    simulations: Annotated[int, typer.Option(min=50, help="Simulated holdouts.")] = 1000,
    holdout_rows: Annotated[int, typer.Option(min=100, help="Rows per holdout.")] = 2000,
    auc: Annotated[float, typer.Option(min=0.55, max=0.98, help="Baseline AUC.")] = 0.80,
    difference: Annotated[
        float, typer.Option(min=0.0, max=0.2, help="True AUC difference (0: false positives).")
    ] = 0.02,
    alpha: Annotated[float, typer.Option(min=0.001, max=0.5, help="Significance level.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
) -> None:
    """False-positive rate (difference 0) or DeLong's power (difference > 0), by Monte Carlo."""
    from ml.experiments.simulate import simulate as run

    result = run(simulations, holdout_rows, auc, difference, alpha, seed=seed)
    typer.echo(json.dumps(result.to_dict(), indent=1))


@app.command()
def tune(
    candidate: Annotated[str, typer.Option(help="Candidate name from the pipeline config.")],
    trials: Annotated[int, typer.Option(min=1, help="Finished trials wanted in the study.")] = 20,
    from_run: Annotated[
        str | None,
        typer.Option(help="Tune on this run's training set (default: the champion's)."),
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="Optuna storage URL (default: build/experiments).")
    ] = None,
    study: Annotated[str | None, typer.Option(help="Study name (default: derived).")] = None,
    log_models: Annotated[
        bool, typer.Option(help="Log every completed trial's model, not only the best's.")
    ] = False,
) -> None:
    """Optuna study as nested MLflow runs on a past run's exact training set; resumable."""
    from ml.cli.governance import _connect
    from ml.config import load_pipeline_config
    from ml.experiments.tune import tune as run_tune
    from ml.experiments.tune_data import training_set_of
    from ml.features import store as feature_store
    from ml.settings import get_settings

    _connect()
    settings = get_settings()
    source_run, frame, lineage = training_set_of(from_run, settings)
    folder = settings.build / "experiments"
    folder.mkdir(parents=True, exist_ok=True)
    result = run_tune(
        frame,
        feature_store.model_features(settings.feature_service),
        candidate,
        load_pipeline_config(),
        lineage,
        trials,
        storage or f"sqlite:///{folder / 'optuna.db'}",
        study,
        log_models=log_models,
    )
    typer.echo(
        f"study {result.study_name}: {result.trials_run} trial(s) run now, {result.finished} "
        f"finished ({result.pruned} pruned); parent run {result.parent_run_id}"
    )
    if result.best_run_id:
        typer.echo(f"best: run {result.best_run_id} inner AUC {result.best_value:.4f} "
                   f"{result.best_params}")  # fmt: skip
        typer.echo(f"compare: mlops experiments compare {source_run} {result.best_run_id}")


@app.command()
def search(
    filter_string: Annotated[
        str, typer.Argument(help='MLflow filter, e.g. "metrics.roc_auc > 0.8".')
    ],
    order_by: Annotated[
        list[str] | None, typer.Option(help="e.g. 'metrics.roc_auc DESC' (repeatable).")
    ] = None,
    max_results: Annotated[int, typer.Option("--max", min=1, help="At most this many.")] = 50,
    experiment: Annotated[
        list[str] | None, typer.Option(help="Only these experiments (repeatable).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print runs as JSON.")] = False,
) -> None:
    """Search runs across experiments with MLflow's filter language."""
    from ml.cli.governance import _connect
    from ml.experiments.search import search_runs

    _connect()
    runs = search_runs(filter_string, order_by, max_results, experiment)
    if as_json:
        typer.echo(json.dumps([r.to_dict() for r in runs], indent=1))
        return
    asked = f"{filter_string} {' '.join(order_by or [])}"
    for r in runs:
        # The metrics the user filtered or ordered by first, then the others alphabetically.
        keys = sorted(r.metrics, key=lambda k: (f"metrics.{k}" not in asked, k))[:4]
        shown = ", ".join(f"{k}={r.metrics[k]:.4g}" for k in keys)
        typer.echo(f"{r.run_id}  {r.experiment:<16} {r.name:<24} {shown}")
    typer.echo(f"{len(runs)} run(s)")


@app.command()
def gc(
    store: Annotated[
        str | None,
        typer.Option(help="cas+file:// or cas+s3:// store (default: this platform's)."),
    ] = None,
    grace_hours: Annotated[
        float, typer.Option(min=0.0, help="Keep a blob this long after it is first unused.")
    ] = 24.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Delete artifact blobs no run references any more (after `mlflow gc` removed runs).

    The first run that finds a blob unused only records it; a run at least --grace-hours
    later deletes it if it is still unused, so an upload in flight never loses its blob.
    """
    from contract.objectstore import LOCAL_ARTIFACTS_SCHEME, artifact_destination
    from ml.errors import UserError
    from ml.experiments.dedup_store import SCHEMES, collect_garbage
    from ml.settings import apply_process_defaults, get_settings
    from ml.tracking import artifact_store_uri

    apply_process_defaults()
    settings = get_settings()
    bucket = settings.bucket("artifacts")
    uri = store or (
        artifact_destination(bucket) if bucket else artifact_store_uri(settings.mlflow_dir)
    )
    if not uri.startswith(tuple(f"{scheme}://" for scheme in SCHEMES)):
        raise UserError(
            f"--store {uri!r} is not a deduplicated store",
            f"pass a URI starting with one of {', '.join(f'{s}://' for s in SCHEMES)}",
        )
    local_prefix = f"{LOCAL_ARTIFACTS_SCHEME}://"
    local = uri.removeprefix(local_prefix)
    if uri.startswith(local_prefix) and not Path(local).is_dir():
        raise UserError(f"no artifact store at {local}", "run `mlops demo` or pass --store")
    report = collect_garbage(uri, grace_s=grace_hours * 3600)
    if as_json:
        typer.echo(json.dumps({"store": uri, **report.to_dict()}, indent=1))
        return
    typer.echo(
        f"{uri}: {report.blobs} blobs, {report.referenced} in use; deleted {report.deleted} "
        f"({report.deleted_bytes:,} bytes); {report.pending} unused, waiting out the "
        f"{grace_hours:g} h grace period"
    )


@app.command()
def reproduce(
    run_id: Annotated[str, typer.Argument(help="A run trained by `mlops pipeline train`.")],
    strict_env: Annotated[
        bool, typer.Option("--strict-env", help="Refuse when the environment differs.")
    ] = False,
    archive: Annotated[
        Path | None,
        typer.Option(help="Snapshot archive (default: the build's, else the embedded platform's)"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Retrain a run from its manifest with its parameters and seed; compare; record the result.

    Exit code 0 when metrics and holdout predictions are equal (bitwise in the run's
    environment, within a stated tolerance otherwise), 1 when they differ, 2 for bad input.
    """
    from ml.cli.governance import _connect
    from ml.experiments.reproduce import reproduce as run_reproduce
    from ml.progress import Stages
    from ml.settings import get_settings

    _connect()
    result = run_reproduce(
        run_id, get_settings(), strict_env=strict_env, archive_dir=archive, stages=Stages(total=4)
    )
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=1))
    else:
        typer.echo(f"{'metric':<14} {'original':<20} {'reproduced':<20} equal")
        for m in result.metrics:
            equal = "yes" if m.equal else "NO"
            typer.echo(f"{m.name:<14} {m.original!r:<20} {m.reproduced!r:<20} {equal}")
        typer.echo(f"predictions: {result.predictions.summary()}")
        typer.echo(f"  tolerance: {result.predictions.tolerance_reason}")
        typer.echo(f"environment: {result.environment.summary()}")
        for note in result.notes:
            typer.echo(f"note: {note}")
        typer.echo(
            f"verdict: {result.verdict} (run {result.reproduction_run_id} reproduces "
            f"{result.original_run_id})"
        )
    if not result.reproduced:
        raise typer.Exit(1)
