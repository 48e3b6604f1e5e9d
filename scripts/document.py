"""Capture evidence that a stack worked, into a dated folder under ``docs/``.

    uv run python -m scripts.document --stack aws-dev

Writes ``docs/evidence/<YYYY-MM-DD>-<stack>/``: ``outputs.json`` (secrets masked),
``inventory.json`` (the offline render: every resource's type, name, parent, inputs, secrets
redacted), ``state.json`` (the resources really in the stack's state), the architecture
diagram generated from the inventory, ``cost.md`` (AWS stacks: the estimate, and the estimated
cost so far since the stack's first update), ``alerts.md`` (alert runbooks) and a ``README.md``
that links them. ``--offline`` documents a stack from the render alone (no Pulumi CLI needed).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from scripts import cost, diagram, workflow

EVIDENCE_ROOT = workflow.ROOT / "docs" / "evidence"
HOURS_PER_MONTH = 730


def evidence_dir(stack_name: str, day: date, root: Path = EVIDENCE_ROOT) -> Path:
    return root / f"{day:%Y-%m-%d}-{stack_name}"


def first_update(stack: workflow.StackLike) -> datetime | None:
    """Start of the stack's oldest successful update, if the backend keeps history."""
    history = getattr(stack, "history", None)
    if history is None:
        return None
    starts = [u.start_time for u in history() if u.kind == "update" and u.result == "succeeded"]
    return min(starts) if starts else None


def cost_so_far(monthly: float, since: datetime, now: datetime) -> float:
    """The estimate prorated over the hours since ``since``."""
    hours = max((now - since).total_seconds() / 3600, 0.0)
    return round(monthly * hours / HOURS_PER_MONTH, 2)


def document(
    stack_name: str,
    *,
    inventory: list[dict],
    stack: workflow.StackLike | None,
    out_root: Path = EVIDENCE_ROOT,
    now: datetime | None = None,
    out: Callable[[str], None] = print,
) -> Path:
    """Write the evidence folder for ``stack_name`` and return its path.

    Args:
        inventory: the offline render of the stack (``mlops infra render``).
        stack: the Automation API stack, or None to document from the render alone.
    """
    now = now or datetime.now(UTC)
    folder = evidence_dir(stack_name, now.date(), out_root)
    folder.mkdir(parents=True, exist_ok=True)
    written = [_json(folder / "inventory.json", inventory)]
    if stack is not None:
        written.append(_json(folder / "outputs.json", workflow.plain_outputs(stack)))
        written.append(_json(folder / "state.json", workflow.state_resources(stack)))
    written += diagram.write(inventory, f"{stack_name} ({now:%Y-%m-%d})", folder)
    if workflow.is_aws(stack_name):
        written.append(_cost(stack_name, inventory, stack, now, folder))
    written.append(_alerts(folder))
    written.append(_index(folder, stack_name, now, written))
    out(f"document: wrote {len(written)} files to {folder}")
    return folder


def _cost(
    name: str,
    inventory: list[dict],
    stack: workflow.StackLike | None,
    now: datetime,
    folder: Path,
) -> Path:
    estimate = cost.estimate(inventory)
    text = cost.to_markdown(estimate, name)
    since = first_update(stack) if stack is not None else None
    if since is not None:
        so_far = cost_so_far(estimate.total, since, now)
        text += f"\nEstimated cost so far (since {since:%Y-%m-%d %H:%M} UTC): ${so_far:,.2f}\n"
    path = folder / "cost.md"
    path.write_text(text)
    return path


def _alerts(folder: Path) -> Path:
    from components.alerting import runbooks_markdown

    path = folder / "alerts.md"
    path.write_text(runbooks_markdown())
    return path


def _index(folder: Path, name: str, now: datetime, files: list[Path]) -> Path:
    lines = [f"# Stack {name}: evidence of {now:%Y-%m-%d %H:%M} UTC", ""]
    lines += [f"- [{p.name}]({p.name})" for p in files]
    path = folder / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def _json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="local, aws-dev or aws-prod")
    parser.add_argument("--offline", action="store_true", help="from the render only, no Pulumi")
    parser.add_argument("--out", type=Path, default=EVIDENCE_ROOT, help="default: docs/evidence")
    args = parser.parse_args(argv)
    stack = None if args.offline else workflow.open_stack(args.stack)
    inventory = workflow.render_inventory(args.stack)
    document(args.stack, inventory=inventory, stack=stack, out_root=args.out)


if __name__ == "__main__":
    workflow.run_cli(main)
