"""``mlops demo``: run the whole lifecycle embedded and say where the outputs are."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer()


@app.callback(invoke_without_command=True)
def demo(
    seed: Annotated[
        int | None, typer.Option(min=0, help="Seed for data and models (default: settings).")
    ] = None,
    customers: Annotated[
        int | None, typer.Option(min=100, help="Number of customers to generate.")
    ] = None,
) -> None:
    """Run every stage of the ML lifecycle embedded, writing everything under build/demo/."""
    from ml.demo import run_demo
    from ml.progress import console
    from ml.settings import Settings, apply_process_defaults, get_settings

    apply_process_defaults()
    _quiet_library_warnings()
    base = get_settings()
    overrides = {
        k: v for k, v in {"seed": seed, "n_customers": customers}.items() if v is not None
    }
    settings = Settings(**{**base.model_dump(), **overrides})
    summary = run_demo(settings)
    total = sum(summary["timings_s"].values())
    console.print(f"\n[bold green]Demo finished in {total:.0f}s.[/] Outputs:")
    console.print(f"  index:   {summary['index_html']}")
    summary_path = settings.demo_dir / "summary.json"
    if summary_path.is_relative_to(settings.root):
        summary_path = summary_path.relative_to(settings.root)
    console.print(f"  summary: {summary_path}")


def _quiet_library_warnings() -> None:
    """Third-party deprecation chatter is not the user's business during a demo run."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("feast", "mlflow", "evidently", "bentoml", "alembic", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # MLflow infers each logged model's environment and warns about every fallback it takes
    # (no pip in a uv-made venv, uv export not used); the model's environment is still recorded.
    for name in ("mlflow.utils.environment", "mlflow.utils.uv_utils"):
        logging.getLogger(name).setLevel(logging.ERROR)
