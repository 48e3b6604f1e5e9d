"""`mlops release ...`: the gates a model version passes before it goes live (CI or by hand)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ml.cli.governance import AuditOpt
from ml.errors import UserError

app = typer.Typer(no_args_is_help=True, help="Release gates: consistency, approval, canary.")

VersionArg = Annotated[str, typer.Argument(help="Model version number.")]
ModelOpt = Annotated[str | None, typer.Option(help="Registered model (default: settings).")]
SummaryOpt = Annotated[
    Path | None,
    typer.Option(
        envvar="GITHUB_STEP_SUMMARY", help="Also append the Markdown result here (CI job summary)."
    ),
]


@app.command()
def check(
    version: VersionArg,
    stack: Annotated[
        str | None, typer.Option(help="Read the serving image from stacks/Pulumi.<stack>.yaml.")
    ] = None,
    image: Annotated[
        str | None, typer.Option(help="The serving image reference (instead of --stack).")
    ] = None,
    model: ModelOpt = None,
    main_ref: Annotated[str, typer.Option(help="The main branch's ref.")] = "origin/main",
    allow_lock_mismatch: Annotated[
        str | None,
        typer.Option(
            envvar="MLOPS_ALLOW_LOCK_MISMATCH",
            help="Release despite a different uv.lock; the reason is audited.",
        ),
    ] = None,
    verify_registry: Annotated[
        bool,
        typer.Option(
            "--verify-registry",
            help="Also ask ECR that the digest is the one of the commit tag (AWS credentials).",
        ),
    ] = False,
    summary: SummaryOpt = None,
    audit_log: AuditOpt = None,
) -> None:
    """Check the serving image: built from main, with the uv.lock VERSION was trained with."""
    from ml.cli.governance import _model
    from ml.governance import audit
    from ml.release import consistency
    from ml.settings import get_settings

    name = _model(model)
    ref = image or _stack_image(stack)
    lineage = consistency.training_lineage(name, version)
    git = consistency.Git(get_settings().root, main_ref)
    registry = consistency.ecr_lookup if verify_registry else None
    result = consistency.check(name, version, lineage, ref, git, allow_lock_mismatch, registry)
    text = result.to_markdown()
    typer.echo(text, nl=False)
    _append(summary, text)
    details = {"image": ref, "passed": result.passed, "problems": result.problems}
    if result.override:
        details |= {"override": result.override, "lock_changes": result.lock_changes}
    subject = audit.model_subject(name, version)
    audit.append("release-check", subject, _actor(), details, path=audit_log)
    if not result.passed:
        only_lock = result.image_commit is not None and len(result.problems) == 1
        only_lock = only_lock and not result.lock_matches
        raise UserError(
            f"release check of {name} version {version} failed: {result.problems[0]}",
            "retrain on this lock, or pass --allow-lock-mismatch 'reason' to release anyway"
            if only_lock
            else "build the serving image from main with scripts.build_images and pin it",
        )


@app.command()
def wait(
    version: VersionArg,
    model: ModelOpt = None,
    timeout_minutes: Annotated[int, typer.Option(min=1, help="Give up after this long.")] = 1440,
    interval_seconds: Annotated[int, typer.Option(min=1, help="Poll interval.")] = 60,
    summary: SummaryOpt = None,
) -> None:
    """Wait until a reviewer's approval of VERSION is recorded (this never approves)."""
    from ml.cli.governance import _model
    from ml.release.approval import registry_status, wait_for_approval

    name = _model(model)
    status = wait_for_approval(
        name,
        version,
        registry_status(name, version),
        timeout_s=timeout_minutes * 60,
        interval_s=interval_seconds,
        out=typer.echo,
    )
    line = f"{name} version {version} is {status}: the release may proceed"
    typer.echo(line)
    _append(summary, f"### Review\n\n{line} (recorded in the registry and the audit log)\n")


@app.command()
def canary(
    version: VersionArg,
    policy: Annotated[Path, typer.Option(help="The traffic policy file the servers watch.")],
    model: ModelOpt = None,
    log: Annotated[Path | None, typer.Option(help="Prediction log (JSONL).")] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Most decisions to take.")] = 48,
    interval_seconds: Annotated[int, typer.Option(min=0, help="Time between decisions.")] = 300,
    summary: SummaryOpt = None,
    audit_log: AuditOpt = None,
) -> None:
    """Step VERSION's canary until it completes or rolls back; every decision is audited."""
    from ml.cli.governance import _model
    from ml.governance import audit
    from ml.release.canary import drive
    from ml.serve.rollout import step_rollout
    from ml.settings import get_settings

    name = _model(model)
    settings = get_settings()
    decisions = settings.build / "serving" / "rollout.jsonl"
    prediction_log = log or settings.prediction_log_path
    header = f"### Canary of {name} version {version}\n\n| round | decision | share | why |\n"
    lines = [header + "|---|---|---|---|"]

    def out(line: str) -> None:
        typer.echo(line)
        lines.append(line)

    try:
        drive(
            name,
            version,
            lambda: step_rollout(policy, prediction_log, decisions),
            actor=_actor(),
            rounds=rounds,
            record=lambda *entry: audit.append(*entry, path=audit_log),
            interval_s=interval_seconds,
            out=out,
        )
    finally:
        _append(summary, "\n".join(lines) + "\n")


def _stack_image(stack: str | None) -> str:
    """``mlops:servingImage`` of ``stacks/Pulumi.<stack>.yaml``."""
    import yaml

    from infra.config import PROJECT, StackConfig
    from ml.settings import get_settings

    if stack is None:
        raise UserError("no serving image given", "pass --stack aws-prod or --image <ref>")
    path = get_settings().root / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise UserError(f"no stack file {path}", "pass one of local, aws-dev, aws-prod")
    key = f"{PROJECT}:{StackConfig.model_fields['serving_image'].alias}"
    image = (yaml.safe_load(path.read_text()).get("config") or {}).get(key)
    if not image:
        raise UserError(f"{path.name} sets no {key}", "pin it with scripts.build_images")
    return str(image)


def _actor() -> str:
    import getpass
    import os

    return os.environ.get("MLOPS_USER") or os.environ.get("GITHUB_ACTOR") or getpass.getuser()


def _append(summary: Path | None, text: str) -> None:
    if summary is not None:
        with summary.open("a", encoding="utf-8") as out:
            out.write(text + "\n")
