"""`mlops infra ...`: render and check the Pulumi program offline (no cloud, no cluster)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def render(
    stack: Annotated[str, typer.Option(help="Stack to render: local, aws-dev or aws-prod.")],
    out: Annotated[
        Path, typer.Option(help="Output folder for inventory.json and manifests/.")
    ] = Path("build/infra"),
    reveal_secrets: Annotated[
        bool,
        typer.Option(
            "--reveal-secrets",
            help="Real random passwords and secret values in clear (files 0600), for the e2e.",
        ),
    ] = False,
) -> None:
    """Run the Pulumi program for STACK under mocks; write its inventory and manifests."""
    from infra.render import kubernetes_objects
    from infra.render import render as render_stack

    started = time.perf_counter()
    resources = render_stack(stack, out, reveal=reveal_secrets)
    seconds = time.perf_counter() - started
    objects = len(kubernetes_objects(resources))
    typer.echo(
        f"rendered stack {stack}: {len(resources)} resources ({objects} Kubernetes objects) "
        f"in {seconds:.1f}s -> {out}/inventory.json, {out}/manifests/"
    )


@app.command()
def cost(
    stack: Annotated[str, typer.Option(help="AWS stack to price: aws-dev or aws-prod.")],
) -> None:
    """Hourly and monthly on-demand cost of STACK per resource, in the stack's region."""
    from infra.render import render as render_stack
    from scripts import cost as pricing

    inventory = [r.as_json() for r in render_stack(stack)]
    if not any(r["type"].startswith("aws:") for r in inventory):
        typer.echo(f"stack {stack} creates no AWS resource: nothing is billed by a cloud")
        return
    typer.echo(pricing.to_markdown(pricing.estimate(inventory), stack), nl=False)
