"""`mlops abtest ...`: analyse a live A/B experiment, check the test by simulation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ml.errors import UserError

app = typer.Typer(no_args_is_help=True, help="Analyse A/B experiments and validate the test.")


@app.command()
def analyze(
    labels: Annotated[
        Path, typer.Option(help="Outcomes: Parquet/CSV with application_id + label.")
    ],
    log: Annotated[Path | None, typer.Option(help="Prediction log (JSONL).")] = None,
    out: Annotated[Path | None, typer.Option(help="Report folder.")] = None,
    label: Annotated[str, typer.Option(help="Outcome column.")] = "defaulted",
    control: Annotated[str | None, typer.Option(help="Control variant.")] = None,
    alpha: Annotated[float, typer.Option(min=0.0001, max=0.5, help="Significance level.")] = 0.05,
    mde: Annotated[float, typer.Option(min=0.001, max=0.5, help="Detectable difference.")] = 0.02,
) -> None:
    """Compare variants on joined outcomes; write experiment.md/.json/.png."""
    import pandas as pd

    from ml.serve.experiment import analyze_experiment
    from ml.settings import get_settings

    settings = get_settings()
    if not labels.is_file():
        raise UserError(f"no such file: {labels}", "pass a Parquet or CSV file of outcomes")
    frame = pd.read_parquet(labels) if labels.suffix == ".parquet" else pd.read_csv(labels)
    report = analyze_experiment(
        log or settings.prediction_log_path,
        frame,
        out or settings.build / "experiment",
        label=label,
        control=control,
        alpha=alpha,
        mde=mde,
    )
    for c in report.comparisons:
        verdict = "significant" if c.significant else "not significant"
        typer.echo(
            f"{c.variant} vs {c.control}: {c.difference:+.4f} (p={c.p_value:.4f}, {verdict})"
        )
    typer.echo(f"report: {report.report_md}")


@app.command()
def simulate(
    experiments: Annotated[int, typer.Option(min=100, help="Simulated experiments.")] = 2000,
    n_per_arm: Annotated[int, typer.Option(min=50, help="Requests per arm.")] = 2000,
    base_rate: Annotated[float, typer.Option(min=0.01, max=0.99, help="Control rate.")] = 0.85,
    effect: Annotated[
        float, typer.Option(min=0.001, max=0.5, help="True difference (A/B).")
    ] = 0.035,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write the result as JSON here.")] = None,
) -> None:
    """A/A false-positive rate and A/B power of the test, by Monte Carlo."""
    from ml.serve.experiment import simulate as run

    result = run(experiments, n_per_arm, base_rate, effect, seed=seed)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    typer.echo(
        f"A/A false positives {result.false_positive_rate:.2%} (alpha {result.alpha:.0%}); "
        f"power {result.power:.1%} at effect {effect} (expected {result.expected_power:.1%})"
    )
