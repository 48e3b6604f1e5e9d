"""Stand a stack up: show the offline cost estimate (AWS), tag owner and expiry, `pulumi up`.

    uv run python -m scripts.up --stack aws-dev [--owner me@example.com] [--ttl-hours 8] [--yes]

The estimate comes from the offline render (``mlops infra render``) and ``scripts/prices.yaml``
and is shown before anything is created. Owner and expiry are written to the stack's config
(``mlops:owner``, ``mlops:expiresAt``); the program tags every cloud resource with them.
"""

from __future__ import annotations

import argparse
import getpass
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from ml.errors import UserError
from scripts import cost, workflow


def expiry(now: datetime, ttl_hours: int) -> str | None:
    """ISO-8601 UTC expiry ``ttl_hours`` after ``now``; None for no limit (0)."""
    if ttl_hours <= 0:
        return None
    return (now + timedelta(hours=ttl_hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def default_owner() -> str:
    """The git user.email, else the login name."""
    result = subprocess.run(
        ["git", "config", "user.email"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or getpass.getuser()


def up(
    stack: workflow.StackLike,
    *,
    owner: str,
    ttl_hours: int,
    inventory: list[dict] | None,
    confirm: Callable[[str], bool],
    out: Callable[[str], None] = print,
    now: datetime | None = None,
) -> dict:
    """Estimate (when an inventory is given), confirm, tag, then ``stack.up``.

    Returns:
        The stack outputs (secrets masked).

    Raises:
        UserError: the user declined, or a resource has no price.
    """
    if inventory is not None:
        estimate = cost.estimate(inventory)
        out(cost.to_markdown(estimate, stack.name))
        question = f"Create stack {stack.name} at about ${estimate.total:,.2f}/month?"
        if not confirm(question):
            raise UserError(f"stack {stack.name} not created", "re-run and confirm, or --yes")
    from pulumi.automation import ConfigValue

    stack.set_config(workflow.config_key("owner"), ConfigValue(owner))
    expires = expiry(now or datetime.now(UTC), ttl_hours)
    if expires:
        stack.set_config(workflow.config_key("expiresAt"), ConfigValue(expires))
    out(f"up: stack {stack.name}, owner {owner}, expires {expires or 'never'}")
    stack.up(on_output=out, color="auto")
    outputs = workflow.plain_outputs(stack)
    for key, value in sorted(outputs.items()):
        out(f"  {key}: {value}")
    return outputs


def _confirm_tty(question: str) -> bool:
    if not sys.stdin.isatty():
        raise UserError("cannot ask for confirmation without a terminal", "pass --yes")
    return input(f"{question} [y/N] ").strip().lower() in {"y", "yes"}


def _ttl_from_config(stack: workflow.StackLike) -> int:
    value = stack.get_all_config().get(workflow.config_key("ttlHours"))
    return int(getattr(value, "value", value) or 0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="local, aws-dev or aws-prod")
    parser.add_argument("--owner", help="owner tag (default: git user.email)")
    parser.add_argument("--ttl-hours", type=int, help="expiry = now + this (default: ttlHours)")
    parser.add_argument("--yes", action="store_true", help="do not ask before creating")
    args = parser.parse_args(argv)
    workflow.require_pulumi_cli()
    inventory = workflow.render_inventory(args.stack) if workflow.is_aws(args.stack) else None
    stack = workflow.open_stack(args.stack, create=True)
    ttl = args.ttl_hours if args.ttl_hours is not None else _ttl_from_config(stack)
    up(
        stack,
        owner=args.owner or default_owner(),
        ttl_hours=ttl,
        inventory=inventory,
        confirm=(lambda _q: True) if args.yes else _confirm_tty,
    )


if __name__ == "__main__":
    workflow.run_cli(main)
