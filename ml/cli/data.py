"""`mlops data ...`: the upstream batches of the cluster's feature data (object store)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True)


@app.command()
def ingest(
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Also write the counts as JSON to this file.")
    ] = None,
) -> None:
    """Validate every pending batch in landing/ into the offline store; quarantine bad rows."""
    from ml.ingest import ingest_pending
    from ml.objectstore import Bucket
    from ml.settings import apply_process_defaults

    apply_process_defaults()
    counts = ingest_pending(Bucket.for_role("features"))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([asdict(c) for c in counts], indent=2) + "\n")
    if not counts:
        typer.echo("no pending batch in landing/")
        return
    for c in counts:
        typer.echo(
            f"{c.batch_id} {c.table}: received {c.received}, accepted {c.accepted}, "
            f"quarantined {c.quarantined}"
        )
