"""``mlops up``, ``mlops down``, ``mlops status``: the embedded platform after the demo."""

from __future__ import annotations

import json
from typing import Annotated

import typer


def up(
    demo_first: Annotated[
        bool, typer.Option("--demo-first", help="Run the demo first if nothing is served.")
    ] = False,
) -> None:
    """Start the embedded platform on loopback and print each URL once it answers.

    MLflow (UI), the scoring API (OpenAPI docs), Feast's feature server and UI on the demo's
    stores, and Prometheus with a Pushgateway when Debian's packages are installed.
    """
    from ml import up as platform
    from ml.settings import apply_process_defaults, get_settings

    apply_process_defaults()
    settings = get_settings()
    if demo_first and platform.nothing_to_serve(settings):
        from ml.demo import run_demo

        typer.echo("nothing to serve yet: running the demo first")
        run_demo(settings)
    running = platform.up(settings, say=typer.echo)
    typer.echo(f"{len(running)} services up; `mlops down` stops them")


def down() -> None:
    """Stop exactly the processes `mlops up` started."""
    from ml import up as platform
    from ml.settings import get_settings

    stopped = platform.down(get_settings())
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


def status(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    endpoint: Annotated[
        list[str] | None,
        typer.Option(help="NAME=URL of a service to check (e.g. a cluster's); repeatable."),
    ] = None,
) -> None:
    """The platform at a glance: versions and aliases, reviews, drift, retraining, services."""
    import mlflow

    from ml import status as view
    from ml import up as platform
    from ml.errors import UserError
    from ml.settings import apply_process_defaults, get_settings

    apply_process_defaults()
    settings = get_settings()
    endpoints = platform.recorded_urls(settings)
    for item in endpoint or []:
        name, sep, url = item.partition("=")
        if not sep or not url.startswith("http"):
            raise UserError(
                f"--endpoint {item!r} is not NAME=URL", "e.g. serving=http://host:3000"
            )
        endpoints[name] = url
    uri = settings.mlflow_tracking_uri or endpoints.get("mlflow")
    if uri is None:
        raise UserError(
            "no MLflow server to ask", "run `mlops up`, or set MLOPS_MLFLOW_TRACKING_URI"
        )
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)  # not an inherited MLFLOW_REGISTRY_URI
    endpoints.setdefault("mlflow", uri)
    result = view.collect(settings, endpoints)
    typer.echo(json.dumps(result, indent=2) if as_json else view.render(result))
