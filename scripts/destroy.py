"""Tear a stack down safely: export ML state first, refuse protected stacks, verify it is empty.

    uv run python -m scripts.destroy --stack aws-dev [--tracking-uri URL]
    uv run python -m scripts.destroy --stack aws-prod --i-know-this-is-protected

Order: (1) refuse a protected stack (aws-prod, or config ``mlops:protect: true``) unless the
explicit flag is given; (2) export MLflow runs, registry and artifacts and the Feast registry
into ``build/exports/<stack>-<time>/`` (skipped only with ``--skip-export``); (3) for a protected
stack, turn protection off through config and an update (``protect``,
``deletionProtection``), so that Pulumi and AWS allow deletion (``finalSnapshots`` stays on:
the database and the cache still leave a final snapshot); (4) ``pulumi destroy``; (5) check
the stack's state holds no resource but Pulumi's own bookkeeping; (6) on AWS, delete what the
cluster created outside Pulumi (orphaned PVC volumes, snapshotted first when protected) and
list by tag, through AWS's own API, that nothing of the stack remains (:mod:`scripts.leftovers`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ml.errors import UserError
from scripts import leftovers, workflow
from scripts.export import export_stack_state

PROTECTED_FLAG = "--i-know-this-is-protected"
UNPROTECT_KEYS = ("protect", "deletionProtection")

Exporter = Callable[[workflow.StackLike, Path], list[Path]]
# (stack, protected, out) -> what the cloud still holds after the destroy (AWS stacks)
Sweeper = Callable[[workflow.StackLike, bool, Callable[[str], None]], leftovers.Cleanup]


def destroy(
    stack: workflow.StackLike,
    *,
    allow_protected: bool,
    exporter: Exporter | None,
    export_dir: Path,
    sweeper: Sweeper | None = None,
    out: Callable[[str], None] = print,
) -> None:
    """Export (unless ``exporter`` is None), unprotect if allowed, destroy, verify, sweep.

    Raises:
        UserError: the stack is protected and ``allow_protected`` is False, the export failed
            (nothing is destroyed then), or resources are left after the destroy (in the
            stack's state, or in the cloud by tag).
    """
    protected = workflow.is_protected(stack)
    if protected and not allow_protected:
        raise UserError(
            f"stack {stack.name} is protected; nothing was exported or destroyed",
            f"if you really mean to delete it and its data, re-run with {PROTECTED_FLAG}",
        )
    if exporter is None:
        out(f"destroy: NOT exporting MLflow/Feast state of {stack.name} (--skip-export)")
    else:
        files = exporter(stack, export_dir)
        out(f"destroy: exported {len(files)} files to {export_dir}")
    if protected:
        _unprotect(stack, out)
    stack.destroy(on_output=out, color="auto")
    left = workflow.billable(workflow.state_resources(stack))
    if left:
        urns = ", ".join(r["urn"] for r in left[:5])
        raise UserError(
            f"{len(left)} resources are still in stack {stack.name} after destroy: {urns}",
            f"inspect with `pulumi stack -s {stack.name} --show-urns`, then destroy again",
        )
    if sweeper is not None:
        swept = sweeper(stack, protected, out)
        for arn in swept.kept:
            out(f"destroy: kept on purpose: {arn}")
        if swept.left:
            raise UserError(
                f"{len(swept.left)} resources tagged stack={stack.name} remain in the cloud after "
                f"destroy: {', '.join(swept.left[:5])}",
                "delete them in the AWS console or CLI (they are not in Pulumi's state), then "
                "run destroy again to re-check",
            )
    out(f"destroy: stack {stack.name} holds no resources; nothing billable is left")


def _unprotect(stack: workflow.StackLike, out: Callable[[str], None]) -> None:
    from pulumi.automation import ConfigValue

    out(f"destroy: turning protection off on {stack.name} ({', '.join(UNPROTECT_KEYS)})")
    for key in UNPROTECT_KEYS:
        stack.set_config(workflow.config_key(key), ConfigValue("false"))
    stack.up(on_output=out, color="auto", message="disable protection before destroy")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="local, aws-dev or aws-prod")
    parser.add_argument(
        PROTECTED_FLAG,
        dest="allow_protected",
        action="store_true",
        help="allow destroying a protected stack (aws-prod)",
    )
    parser.add_argument("--tracking-uri", help="MLflow URL (default: the stack output)")
    parser.add_argument("--skip-export", action="store_true", help="do not export ML state")
    parser.add_argument("--export-dir", type=Path, help="default: build/exports/<stack>-<time>")
    args = parser.parse_args(argv)
    stack = workflow.open_stack(args.stack)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    export_dir = args.export_dir or workflow.BUILD / "exports" / f"{args.stack}-{stamp}"
    destroy(
        stack,
        allow_protected=args.allow_protected,
        exporter=None
        if args.skip_export
        else (lambda s, d: export_stack_state(s, d, args.tracking_uri)),
        export_dir=export_dir,
        sweeper=aws_sweeper if workflow.is_aws(args.stack) else None,
    )


def aws_sweeper(
    stack: workflow.StackLike, protected: bool, out: Callable[[str], None] = print
) -> leftovers.Cleanup:
    """:func:`scripts.leftovers.clean_up` in the stack's region with the caller's credentials."""
    import boto3

    region = getattr(stack.get_all_config().get("aws:region"), "value", None)
    session = boto3.Session(region_name=region)
    return leftovers.clean_up(session, stack.name, snapshot_first=protected, out=out)


if __name__ == "__main__":
    workflow.run_cli(main)
