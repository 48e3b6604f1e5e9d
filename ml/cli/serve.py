"""`mlops serve ...`: run the scoring server, manage the traffic policy, step a canary."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Serve the champion with A/B, canary and shadows.")


@app.command()
def start(
    policy: Annotated[
        Path | None, typer.Option(help="Traffic policy file (default: MLOPS_TRAFFIC_POLICY).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: MLOPS_SERVING_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes.")] = None,
) -> None:
    """Run the scoring server on 127.0.0.1 until interrupted."""
    import time

    from ml.serve.server import start_server
    from ml.serve.traffic import load_policy
    from ml.settings import apply_process_defaults, get_settings

    apply_process_defaults()
    settings = get_settings()
    loaded = load_policy(policy) if policy else None
    with start_server(
        settings, loaded, port=port or settings.serving_port, workers=workers
    ) as url:
        typer.echo(f"serving at {url} (OpenAPI: {url}/docs); Ctrl-C stops it")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            typer.echo("stopping")


@app.command("check-policy")
def check_policy(
    path: Annotated[Path, typer.Argument(help="Policy file (YAML or JSON).")],
) -> None:
    """Validate a traffic policy and print the live shares it gives."""
    from ml.serve.traffic import load_policy

    loaded = load_policy(path)
    shares = ", ".join(f"{k} {v:.1%}" for k, v in loaded.effective_weights().items())
    shadows = ", ".join(s.name for s in loaded.shadows) or "none"
    typer.echo(f"ok: live {shares}; shadows: {shadows}")


@app.command("write-schema")
def write_schema(
    out: Annotated[Path | None, typer.Option(help="Output (default: the committed file).")] = None,
) -> None:
    """Regenerate the traffic policy's JSON Schema from the pydantic model."""
    from ml.serve.traffic import SCHEMA_PATH, write_policy_schema

    typer.echo(write_policy_schema(out or SCHEMA_PATH))


@app.command()
def rollout(
    policy: Annotated[Path, typer.Option(help="The policy file the servers watch.")],
    log: Annotated[Path | None, typer.Option(help="Prediction log (JSONL).")] = None,
    decisions: Annotated[
        Path | None, typer.Option(help="Decision log (default: <build>/serving/rollout.jsonl).")
    ] = None,
) -> None:
    """Judge the canary on recent traffic: advance, hold, complete or roll back (recorded)."""
    from ml.serve.rollout import step_rollout
    from ml.settings import get_settings

    settings = get_settings()
    decision = step_rollout(
        policy,
        log or settings.prediction_log_path,
        decisions or settings.build / "serving" / "rollout.jsonl",
    )
    typer.echo(f"{decision.action}: {decision.reason}")
