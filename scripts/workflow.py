"""What up, document and destroy share: the Pulumi CLI check, opening a stack with the
Automation API, the offline render, stack config flags, and one-line error reporting.

The scripts take the Automation API ``Stack`` as a parameter wherever they act on it, so tests
pass a fake and check what happened in which order without a Pulumi CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import yaml

from ml.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "build"
PROTECTED_STACKS = frozenset({"aws-prod"})
INSTALL_PULUMI = (
    "install the Pulumi CLI: `curl -fsSL https://get.pulumi.com | sh` (or `brew install pulumi`),"
    " then `pulumi login` (or `pulumi login --local`) and run again"
)


class StackLike(Protocol):
    """The part of ``pulumi.automation.Stack`` the scripts use (fakes implement this)."""

    name: str
    workspace: Any  # its ``env_vars`` reach the Pulumi CLI and the program

    def set_config(self, key: str, value: Any, *, path: bool = False) -> None: ...
    def get_all_config(self) -> dict[str, Any]: ...
    def up(self, **kwargs: Any) -> Any: ...
    def destroy(self, **kwargs: Any) -> Any: ...
    def outputs(self) -> dict[str, Any]: ...
    def export_stack(self) -> Any: ...


def require_pulumi_cli(which: Callable[[str], str | None] = shutil.which) -> str:
    """Path of the ``pulumi`` binary.

    Raises:
        UserError: it is not on PATH (the message says how to install it).
    """
    path = which("pulumi")
    if path is None:
        raise UserError("the Pulumi CLI (`pulumi`) is not on PATH", INSTALL_PULUMI)
    return path


def project_name() -> str:
    """The Pulumi project name (config keys live in its namespace)."""
    try:
        return yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["name"]
    except FileNotFoundError:
        raise UserError(
            "no Pulumi.yaml at the repository root", "run from a full checkout"
        ) from None


def config_key(key: str) -> str:
    """``owner`` -> ``<project>:owner``."""
    return f"{project_name()}:{key}"


def open_stack(name: str, create: bool = False):
    """The Automation API stack ``name`` of the project at the repo root (local program)."""
    require_pulumi_cli()
    from pulumi import automation as auto  # imported late: it needs the CLI to be useful

    opener = auto.create_or_select_stack if create else auto.select_stack
    try:
        return opener(stack_name=name, work_dir=str(ROOT))
    except auto.errors.CommandError as error:
        raise UserError(
            f"cannot open stack {name!r}: {str(error).strip().splitlines()[-1]}",
            "check `pulumi whoami` and `pulumi stack ls` in the repository root",
        ) from None


def config_flag(stack: StackLike, key: str) -> bool:
    """A boolean stack config value (``true``/``false``), False when unset."""
    value = stack.get_all_config().get(config_key(key))
    raw = getattr(value, "value", value)
    return str(raw).strip().lower() in {"true", "1", "yes"}


def is_protected(stack: StackLike) -> bool:
    """aws-prod, or any stack whose config sets ``<project>:protect: true``."""
    return stack.name in PROTECTED_STACKS or config_flag(stack, "protect")


def is_aws(stack_name: str) -> bool:
    return stack_name.startswith("aws")


def render_inventory(stack_name: str, out_dir: Path | None = None) -> list[dict]:
    """Run ``mlops infra render`` (offline, Pulumi mocks) and load its ``inventory.json``."""
    out_dir = out_dir or BUILD / "render" / stack_name
    mlops = shutil.which("mlops") or str(Path(sys.executable).with_name("mlops"))
    cmd = [mlops, "infra", "render", "--stack", stack_name, "--out", str(out_dir)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise UserError(
            f"`mlops infra render --stack {stack_name}` failed: {last}",
            "fix the stack config, then run again",
        )
    return json.loads((out_dir / "inventory.json").read_text())


def plain_outputs(stack: StackLike, reveal: bool = False) -> dict[str, Any]:
    """Stack outputs as plain values; secrets masked unless ``reveal``."""
    return {
        key: out.value if (reveal or not out.secret) else "[secret]"
        for key, out in stack.outputs().items()
    }


def state_resources(stack: StackLike) -> list[dict]:
    """Resources in the stack's state (``type``, ``urn``, ``parent``); empty after a destroy."""
    deployment = stack.export_stack().deployment or {}
    return [
        {"type": r["type"], "urn": r["urn"], "parent": r.get("parent")}
        for r in deployment.get("resources") or []
    ]


def billable(resources: list[dict]) -> list[dict]:
    """Everything but Pulumi's own bookkeeping (the Stack resource and providers)."""
    return [r for r in resources if not r["type"].startswith("pulumi:")]


def run_cli(main: Callable[[], None]) -> None:
    """Run a script's entry point: a UserError becomes one line on stderr and exit code 2."""
    try:
        main()
    except UserError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        raise SystemExit(130) from None
