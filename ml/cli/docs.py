"""`mlops docs build`: the static report site (model cards, reports, lineage, stack docs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Build the static report site.")


@app.command()
def build(
    out: Annotated[Path | None, typer.Option(help="Output folder (default: build/site).")] = None,
) -> None:
    """Render model cards, drift/experiment reports, lineage and docs/ into a static site."""
    from ml.governance.site import build_site
    from ml.settings import get_settings

    site = build_site(get_settings(), out_dir=out)
    typer.echo(
        f"site: {site.index} ({len(site.cards)} model cards, {len(site.reports)} reports, "
        f"{len(site.docs)} stack docs, {len(site.warnings)} MkDocs warnings)"
    )
    for warning in site.warnings[:10]:
        typer.echo(f"  {warning}", err=True)


@app.callback()
def _group() -> None:
    """Keep `build` a subcommand even though it is the only one."""
