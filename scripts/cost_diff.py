"""Cost estimate of every AWS stack on a branch, and its difference from the base branch.

    uv run python -m scripts.cost_diff --head build/infra --base base/build/infra

Both folders hold ``<stack>/inventory.json`` as ``mlops infra render`` (``make render``) writes
them; the base one comes from rendering the pull request's base branch. Both sides are priced
with this branch's ``scripts/prices.yaml``, so the difference is the change in resources, not
a change of prices. A stack missing on the base side is new (its whole cost is the
difference). The Markdown goes to stdout and, in GitHub Actions, to the job summary.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from scripts import cost, job_summary, workflow


@dataclass(frozen=True)
class StackCost:
    stack: str
    head: cost.Estimate
    base: cost.Estimate | None

    @property
    def difference(self) -> float:
        return round(self.head.total - (self.base.total if self.base else 0.0), 2)


def aws_stacks(head_dir: Path) -> list[str]:
    """Stacks rendered in ``head_dir`` that create AWS resources."""
    return sorted(
        p.parent.name
        for p in head_dir.glob("*/inventory.json")
        if any(r["type"].startswith("aws:") for r in _inventory(p))
    )


def _inventory(path: Path) -> list[dict]:
    return json.loads(path.read_text())


def compare(stacks: list[str], head_dir: Path, base_dir: Path | None) -> list[StackCost]:
    """Price each stack's head and base inventories with the same price table."""
    prices = cost.load_prices()
    result = []
    for stack in stacks:
        head = cost.estimate(_inventory(head_dir / stack / "inventory.json"), prices)
        base_file = base_dir / stack / "inventory.json" if base_dir else None
        base = None
        if base_file is not None and base_file.is_file():
            base = cost.estimate(_inventory(base_file), prices)
        result.append(StackCost(stack, head, base))
    return result


def to_markdown(costs: list[StackCost]) -> str:
    rows = [
        "## Cost estimate of the AWS stacks",
        "",
        "On-demand prices from `scripts/prices.yaml`, fixed-price resources only (see "
        "`mlops infra cost --stack <stack>` for the lines).",
        "",
        "| stack | base USD/month | this branch USD/month | difference |",
        "|---|---:|---:|---:|",
    ]
    for c in costs:
        base = f"{c.base.total:,.2f}" if c.base else "new stack"
        rows.append(f"| {c.stack} | {base} | {c.head.total:,.2f} | {c.difference:+,.2f} |")
    changed = [c for c in costs if c.base and c.difference]
    for c in changed:
        rows += ["", f"<details><summary>{c.stack}: what changed</summary>", ""]
        rows += _line_changes(c)
        rows += ["", "</details>"]
    return "\n".join(rows) + "\n"


def _line_changes(c: StackCost) -> list[str]:
    def lines(est: cost.Estimate) -> dict[tuple[str, str], float]:
        return {(ln.resource, ln.item): ln.monthly_usd for ln in est.lines}

    head, base = lines(c.head), lines(c.base) if c.base else {}
    out = ["| resource | item | base | this branch |", "|---|---|---:|---:|"]
    for key in sorted(head.keys() | base.keys()):
        if head.get(key) != base.get(key):
            before, after = base.get(key), head.get(key)
            out.append(f"| {key[0]} | {key[1]} | {_usd(before)} | {_usd(after)} |")
    return out


def _usd(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--head", type=Path, default=workflow.BUILD / "infra")
    parser.add_argument("--base", type=Path, help="the base branch's render (optional)")
    args = parser.parse_args(argv)
    base = args.base if args.base and args.base.is_dir() else None
    text = to_markdown(compare(aws_stacks(args.head), args.head, base))
    if base is None:
        text += "\nNo render of the base branch was found: every stack is shown as new.\n"
    print(text, end="")
    job_summary.append(text)


if __name__ == "__main__":
    workflow.run_cli(main)
