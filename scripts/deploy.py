"""Deploy a stack (CI's deploy job, or by hand): preview, or up + smoke test + rollback.

    uv run python -m scripts.deploy preview --stack aws-dev
    uv run python -m scripts.deploy up --stack aws-dev

``up``: (1) find the commit of the stack's last successful update (Pulumi records the
working tree's ``git.head`` in every update's environment); (2) export the state to
``build/deploy/<stack>-<time>-before.json`` (evidence, and a manual ``pulumi stack import``
if all else fails); (3) ``pulumi up``; (4) the smoke test (:mod:`scripts.smoke`); (5) if it
fails, roll back: check that commit out in a git worktree and ``pulumi up`` the stack from it
(its program and its stack file, so the images it pinned), smoke-test again, and fail the
deploy either way. A first deploy has nothing to roll back to and just fails.
"""

from __future__ import annotations

import argparse
import json
import subprocess
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, cast

from ml.errors import UserError
from scripts import job_summary, smoke, workflow

GIT_HEAD = "git.head"  # the key Pulumi records the deploying commit under


class Deployable(workflow.StackLike, Protocol):
    def preview(self, **kwargs: Any) -> Any: ...
    def history(self, page_size: int | None = None, page: int | None = None) -> Sequence[Any]: ...


Smoke = Callable[[workflow.StackLike], None]
Rollback = Callable[[str, str], workflow.StackLike]  # (stack name, commit) -> stack at commit


def last_good_commit(history: Sequence[Any]) -> str | None:
    """The commit of the newest successful ``update`` in ``history`` (newest first)."""
    for update in history:
        commit = (update.environment or {}).get(GIT_HEAD)
        if update.kind == "update" and update.result == "succeeded" and commit:
            return str(commit)
    return None


def up(
    stack: Deployable,
    *,
    smoke_test: Smoke,
    rollback: Rollback,
    state_dir: Path,
    out: Callable[[str], None] = print,
) -> None:
    """``pulumi up``, smoke test, and roll back to the last good commit when it fails.

    Raises:
        UserError: the smoke test failed (after the rollback, or with nothing to roll back to).
    """
    previous = last_good_commit(stack.history(page_size=20))
    saved = save_state(stack, state_dir)
    out(f"deploy: {stack.name}: state saved to {saved}; last good commit {previous or 'none'}")
    stack.up(on_output=out, color="always")
    try:
        smoke_test(stack)
    except UserError as failure:
        if previous is None:
            raise UserError(
                f"{failure.what}; first deploy of {stack.name}: nothing to roll back to",
                f"fix it and deploy again (state before: {saved})",
            ) from None
        out(f"deploy: smoke test failed ({failure.what}); rolling back to {previous[:12]}")
        restored = rollback(stack.name, previous)
        restored.up(on_output=out, color="always", message=f"rollback to {previous[:12]}")
        smoke_test(restored)
        raise UserError(
            f"{stack.name} was rolled back to {previous[:12]} after a failed smoke test: "
            f"{failure.what}",
            "fix the change and deploy again",
        ) from None
    out(f"deploy: {stack.name} is healthy")


def save_state(stack: workflow.StackLike, state_dir: Path) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = state_dir / f"{stack.name}-{stamp}-before.json"
    exported = stack.export_stack()
    path.write_text(json.dumps({"version": exported.version, "deployment": exported.deployment}))
    path.chmod(0o600)  # the state holds secrets (encrypted, but nobody else needs to read it)
    return path


def worktree_stack(root: Path) -> Rollback:
    """A :data:`Rollback` that opens the stack from a git worktree of ``commit`` under ``root``."""

    def at(stack_name: str, commit: str) -> workflow.StackLike:
        from pulumi import automation as auto

        tree = root / commit[:12]
        if not tree.exists():
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(tree), commit],
                cwd=workflow.ROOT,
                check=True,
                capture_output=True,
            )
        return cast(
            workflow.StackLike, auto.select_stack(stack_name=stack_name, work_dir=str(tree))
        )

    return at


def preview(stack: Deployable, out: Callable[[str], None] = print) -> None:
    """``pulumi preview --diff``; the change summary goes to the job summary in CI."""
    result = stack.preview(on_output=out, color="always", diff=True)
    changes = {str(k): v for k, v in (result.change_summary or {}).items()}
    out(f"preview: {stack.name}: {json.dumps(changes, sort_keys=True)}")
    rows = "\n".join(f"| {op} | {n} |" for op, n in sorted(changes.items())) or "| none | 0 |"
    job_summary.append(
        f"### pulumi preview: {stack.name}\n\n| change | resources |\n|---|---:|\n{rows}\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["preview", "up"])
    parser.add_argument("--stack", required=True, help="local, aws-dev or aws-prod")
    parser.add_argument("--smoke-timeout", type=float, default=600, help="seconds")
    args = parser.parse_args(argv)
    stack = workflow.open_stack(args.stack)
    if args.action == "preview":
        preview(stack)
        return
    up(
        stack,
        smoke_test=lambda s: smoke.smoke(s, timeout_s=args.smoke_timeout),
        rollback=worktree_stack(workflow.BUILD / "rollback"),
        state_dir=workflow.BUILD / "deploy",
    )


if __name__ == "__main__":
    workflow.run_cli(main)
