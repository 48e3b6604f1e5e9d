"""TTL reaper: destroy the stacks whose expiry has passed, after exporting their state.

    uv run python -m scripts.reaper [--dry-run]

Every stack of the project's Pulumi backend is looked at. Its expiry is the ``expiry`` tag
(:data:`infra.config.EXPIRY_TAG`) that the stack's AWS provider puts on every resource, read
from the stack's state (the deployed truth, whatever the checked-out stack file says), else the
stack config ``mlops:expiresAt`` that ``scripts.up`` writes. A stack without an expiry, or a
protected one, is never touched. An expired stack's Pulumi state is saved to
``build/reaper/``, then :func:`scripts.destroy.destroy` exports its MLflow and Feast state and
destroys it (an export that fails leaves the stack standing, and the reaper says so). The report,
on stdout and in the job summary, lists what was removed and what keeping it would have cost
(its fixed-price resources priced from the state with ``scripts/prices.yaml``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.config import EXPIRY_TAG
from ml.errors import UserError
from scripts import cost, job_summary, workflow
from scripts.deploy import save_state

AWS_PROVIDER = "pulumi:providers:aws"
Destroyer = Callable[[workflow.StackLike], None]


@dataclass(frozen=True)
class Reaped:
    stack: str
    expired_at: datetime
    resources: int
    monthly_usd: float | None  # None: not priced (no AWS provider, or a price is missing)
    outcome: str  # "destroyed", "would destroy", or why it was left standing


def state_resources(stack: workflow.StackLike) -> list[dict]:
    """The resources of the stack's state, with their inputs."""
    return list((stack.export_stack().deployment or {}).get("resources") or [])


def expiry(resources: list[dict], config: dict[str, Any]) -> datetime | None:
    """The stack's expiry: its AWS provider's ``expiry`` default tag, else ``mlops:expiresAt``."""
    for r in resources:
        if r.get("type") == AWS_PROVIDER:
            tags = _decoded((r.get("inputs") or {}).get("defaultTags")) or {}
            value = (tags.get("tags") or {}).get(EXPIRY_TAG)
            if value:
                return _parse_time(value)
    value = config.get(workflow.config_key("expiresAt"))
    raw = getattr(value, "value", value)
    return _parse_time(str(raw)) if raw else None


def _decoded(value: Any) -> Any:
    """Provider inputs are stored JSON-encoded in the state."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return None
    return value


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def monthly_cost(resources: list[dict]) -> float | None:
    """What the stack's fixed-price resources cost a month, priced from their state inputs."""
    inventory = [
        {"type": r["type"], "name": r["urn"].rsplit("::", 1)[-1], "inputs": r.get("inputs") or {}}
        for r in resources
    ]
    if not any(r["type"] == AWS_PROVIDER for r in inventory):
        return None
    try:
        return cost.estimate(inventory).total
    except UserError:
        return None


def reap(
    stacks: list[workflow.StackLike],
    *,
    now: datetime,
    destroyer: Destroyer,
    dry_run: bool,
    out: Callable[[str], None] = print,
) -> list[Reaped]:
    """Destroy each expired, unprotected stack of ``stacks``; report each one looked at."""
    reaped = []
    for stack in stacks:
        resources = state_resources(stack)
        expires = expiry(resources, stack.get_all_config())
        if expires is None or expires > now or workflow.is_protected(stack):
            continue
        billable = len(workflow.billable(resources))
        monthly = monthly_cost(resources)
        outcome = "would destroy"
        if not dry_run:
            try:
                destroyer(stack)
                outcome = "destroyed"
            except UserError as error:
                outcome = f"left standing: {error.what}"
        out(f"reaper: {stack.name} expired {expires:%Y-%m-%d %H:%M} UTC: {outcome}")
        reaped.append(Reaped(stack.name, expires, billable, monthly, outcome))
    return reaped


def to_markdown(reaped: list[Reaped], now: datetime) -> str:
    rows = [f"## TTL reaper, {now:%Y-%m-%d %H:%M} UTC", ""]
    if not reaped:
        return "\n".join([*rows, "No stack has passed its expiry."]) + "\n"
    rows += [
        "| stack | expired | resources | kept, it would cost USD/month | outcome |",
        "|---|---|---:|---:|---|",
    ]
    for r in reaped:
        usd = "-" if r.monthly_usd is None else f"{r.monthly_usd:,.2f}"
        rows.append(
            f"| {r.stack} | {r.expired_at:%Y-%m-%d %H:%M} | {r.resources} | {usd} | {r.outcome} |"
        )
    saved = sum(r.monthly_usd or 0 for r in reaped if r.outcome == "destroyed")
    rows += [
        "",
        f"Fixed-price cost removed: ${saved:,.2f} a month (on-demand, usage not included).",
    ]
    return "\n".join(rows) + "\n"


def _all_stacks() -> list[workflow.StackLike]:
    workflow.require_pulumi_cli()
    from pulumi import automation as auto

    workspace = auto.LocalWorkspace(work_dir=str(workflow.ROOT))
    return [workflow.open_stack(s.name) for s in workspace.list_stacks()]


def _destroyer(out_root: Path) -> Destroyer:
    from scripts import destroy
    from scripts.export import export_stack_state

    def destroy_one(stack: workflow.StackLike) -> None:
        saved = save_state(stack, out_root)
        print(f"reaper: {stack.name}: Pulumi state saved to {saved}")
        destroy.destroy(
            stack,
            allow_protected=False,  # the reaper never destroys a protected stack
            exporter=lambda s, d: export_stack_state(s, d),
            export_dir=out_root / f"{stack.name}-export",
            sweeper=destroy.aws_sweeper if workflow.is_aws(stack.name) else None,
        )

    return destroy_one


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="only list what would go")
    args = parser.parse_args(argv)
    now = datetime.now(UTC)
    reaped = reap(
        _all_stacks(),
        now=now,
        destroyer=_destroyer(workflow.BUILD / "reaper" / f"{now:%Y%m%dT%H%M%SZ}"),
        dry_run=args.dry_run,
    )
    text = to_markdown(reaped, now)
    print(text, end="")
    job_summary.append(text)
    left = [r for r in reaped if r.outcome.startswith("left standing")]
    if left:
        names = ", ".join(r.stack for r in left)
        raise UserError(
            f"{len(left)} expired stacks could not be destroyed: {names}",
            "see the report above; fix the cause and let the next run retry",
        )


if __name__ == "__main__":
    workflow.run_cli(main)
