"""`mlops docs build|publish`: the static report site (model cards, reports, lineage, docs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from contract.objectstore import SITE_PREFIX

app = typer.Typer(no_args_is_help=True, help="Build and publish the static report site.")


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


@app.command()
def publish() -> None:
    """Build the site from the cluster (registry, cards, drift verdicts, audit log); upload it.

    Everything comes from the environment: MLOPS_MLFLOW_TRACKING_URI (and its credentials),
    MLOPS_REPORTS_BUCKET and the S3 endpoint. The site is built under MLOPS_BUILD_DIR and
    uploaded to s3://<reports>/site/.
    """
    from ml.cli.governance import _connect
    from ml.governance.publish import publish as publish_site
    from ml.objectstore import Bucket
    from ml.settings import get_settings

    _connect()
    reports = Bucket.for_role("reports")
    result = publish_site(get_settings(), reports)
    typer.echo(
        f"site: {reports.url(SITE_PREFIX)} ({result.uploaded} files, {result.removed} stale "
        f"removed; {len(result.site.cards)} model cards, {len(result.site.reports)} reports)"
    )
    for warning in [*result.warnings, *result.site.warnings][:10]:
        typer.echo(f"  {warning}", err=True)
