"""Hardening rules of the GitHub Actions workflows (docs/cicd.md), checked on every file.

    uv run python -m scripts.workflow_hardening .github/workflows/*.yml

* every third-party action is pinned by a full commit SHA, with its version in a comment;
* the workflow grants nothing by default (``permissions: {}``) and each job declares its own,
  never ``write-all``; ``id-token: write`` only where AWS credentials are assumed by OIDC;
* a job that deploys or destroys a stack runs in a ``concurrency`` group named after what it
  changes, that never cancels a run in progress (a half-applied ``pulumi up`` is worse);
* no secret is ever put on a command line or echoed: ``${{ secrets.* }}`` only in ``env:``
  or ``with:``, and no ``run`` prints a variable that holds one;
* AWS access only by OIDC role assumption: no access key anywhere;
* every ``run`` does project work through ``make`` (which runs the same locally), or only
  writes a notice.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ml.errors import UserError

PINNED = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")
PINNED_LINE = re.compile(r"uses:\s*[\w.-]+/[\w.-]+\S*@[0-9a-f]{40}")
VERSION_COMMENT = re.compile(r"@[0-9a-f]{40}\s+#\s*v?\d")
SECRET_EXPR = re.compile(r"\$\{\{\s*secrets\.")
ALLOWED_PERMISSIONS = {"read", "none", "write"}
OIDC_ACTION = "aws-actions/configure-aws-credentials"
DEPLOYING = re.compile(
    r"\bmake (deploy|reap)\b|\bpulumi (up|destroy)\b|scripts\.(deploy|reaper|destroy)"
)
STATIC_KEYS = re.compile(
    r"aws-(?:access-key-id|secret-access-key)|AWS_(?:ACCESS_KEY_ID|SECRET_ACCESS_KEY)"
)
PRINTS = re.compile(r"^\s*(echo|printf|cat)\b")
PROJECT_WORK = re.compile(r"(^|\s)make(\s|$)")
NOTICE_ONLY = re.compile(r'^\s*(echo\b|[A-Za-z_]+="[^`$]*"\s*$|[A-Za-z_]+="[^`]*\$\{\{ matrix)')


def load(text: str) -> dict[str, Any]:
    """A workflow document; PyYAML reads the ``on:`` key as True, put it back."""
    doc = yaml.safe_load(text) or {}
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def violations(text: str) -> list[str]:
    """Every rule ``text`` (one workflow file) breaks, one line each; empty when hardened."""
    doc = load(text)
    found = _pinning(text, doc)
    found += _permissions(doc)
    found += _concurrency(doc)
    found += _secrets(doc)
    found += _project_work(doc)
    found += [f"long-lived AWS key: {m}" for m in sorted(set(STATIC_KEYS.findall(text)))]
    return found


def _jobs(doc: dict) -> dict[str, dict]:
    return doc.get("jobs") or {}


def _steps(job: dict) -> list[dict]:
    return job.get("steps") or []


def _pinning(text: str, doc: dict) -> list[str]:
    found = []
    for name, job in _jobs(doc).items():
        uses = [job["uses"]] if "uses" in job else []
        uses += [s["uses"] for s in _steps(job) if "uses" in s]
        for ref in uses:
            if ref.startswith(("./", "docker://")):
                continue
            if not PINNED.match(ref):
                found.append(f"job {name}: {ref} is not pinned by a full commit SHA")
    for line in text.splitlines():
        if PINNED_LINE.search(line) and not VERSION_COMMENT.search(line):
            found.append(f"no version comment after the SHA: {line.strip()}")
    return found


def _permissions(doc: dict) -> list[str]:
    found = []
    if doc.get("permissions") != {}:
        found.append("the workflow must grant nothing by default: `permissions: {}`")
    for name, job in _jobs(doc).items():
        perms = job.get("permissions")
        if not isinstance(perms, dict):
            found.append(f"job {name}: no `permissions:` map of its own (least privilege)")
            continue
        bad = {k: v for k, v in perms.items() if v not in ALLOWED_PERMISSIONS}
        if bad:
            found.append(f"job {name}: unknown permission values {bad}")
        writes = sorted(k for k, v in perms.items() if v == "write" and k != "id-token")
        if writes:
            found.append(f"job {name}: write permission beyond id-token: {', '.join(writes)}")
        oidc = any(str(s.get("uses", "")).startswith(OIDC_ACTION) for s in _steps(job))
        if perms.get("id-token") == "write" and not oidc:
            found.append(f"job {name}: id-token: write without OIDC role assumption")
        if oidc and perms.get("id-token") != "write":
            found.append(f"job {name}: assumes an AWS role but has no id-token: write")
    return found


def _concurrency(doc: dict) -> list[str]:
    found = []
    for name, job in _jobs(doc).items():
        runs = " ".join(str(s.get("run", "")) for s in _steps(job))
        if not DEPLOYING.search(runs):
            continue
        group = job.get("concurrency") or doc.get("concurrency")
        if not isinstance(group, dict) or not group.get("group"):
            found.append(f"job {name} deploys or destroys a stack without a `concurrency` group")
            continue
        if group.get("cancel-in-progress") is not False:
            found.append(f"job {name}: its concurrency group must set cancel-in-progress: false")
        if re.search(r"run_id|run_number|github\.sha", str(group["group"])):
            found.append(f"job {name}: a per-run concurrency group never serialises anything")
    return found


def _secrets(doc: dict) -> list[str]:
    found = []
    for name, job in _jobs(doc).items():
        secret_vars = {
            key
            for scope in (doc.get("env") or {}, job.get("env") or {})
            for key, value in scope.items()
            if SECRET_EXPR.search(str(value))
        }
        for step in _steps(job):
            secret_vars |= {
                k for k, v in (step.get("env") or {}).items() if SECRET_EXPR.search(str(v))
            }
        for step in _steps(job):
            run = str(step.get("run", ""))
            if SECRET_EXPR.search(run):
                found.append(f"job {name}: a secret is expanded into a `run` command line")
            for line in run.splitlines():
                if PRINTS.match(line) and any(
                    re.search(rf"\${{?{var}\b", line) for var in secret_vars
                ):
                    found.append(f"job {name}: prints a secret: {line.strip()}")
    return found


def _project_work(doc: dict) -> list[str]:
    found = []
    for name, job in _jobs(doc).items():
        for step in _steps(job):
            run = str(step.get("run", "")).strip()
            if not run or PROJECT_WORK.search(run):
                continue
            lines = [ln for ln in run.splitlines() if ln.strip()]
            if not all(NOTICE_ONLY.match(ln) for ln in lines):
                found.append(f"job {name}: a `run` step does work outside make: {lines[0]}")
    return found


def main(argv: list[str] | None = None) -> None:
    files = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not files:
        raise UserError("no workflow files given", "pass .github/workflows/*.yml")
    problems = [f"{f}: {v}" for f in files for v in violations(f.read_text())]
    for line in problems:
        print(line)
    print(f"workflow hardening: {len(files)} files, {len(problems)} problems")
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    from scripts import workflow

    workflow.run_cli(main)
