"""`mlops governance ...`: approvals by role, status, the audit log, model cards, permissions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from ml.errors import UserError

app = typer.Typer(no_args_is_help=True, help="Approvals, audit log, model cards, permissions.")

ModelArg = Annotated[str | None, typer.Argument(help="Registered model (default: settings).")]
VersionArg = Annotated[str, typer.Argument(help="Model version number.")]
UserOpt = Annotated[
    str | None,
    typer.Option(
        envvar="MLOPS_USER",
        help="Who you are ($MLOPS_USER). Where the MLflow server authenticates, its user is "
        "you and this may be omitted; a different name is refused.",
    ),
]
RoleOpt = Annotated[
    str, typer.Option(envvar="MLOPS_ROLE", help="The role you act in ($MLOPS_ROLE).")
]
AUDIT_HELP = (
    "Audit log (default: audit/audit.jsonl in the reports bucket when MLOPS_REPORTS_BUCKET is "
    "set, else build/audit/audit.jsonl)."
)
AuditOpt = Annotated[Path | None, typer.Option("--audit-log", help=AUDIT_HELP)]


@app.command()
def register(
    version: VersionArg,
    role: RoleOpt,
    user: UserOpt = None,
    model: ModelArg = None,
    audit_log: AuditOpt = None,
) -> None:
    """Enter VERSION into the approval workflow as a candidate owned by you."""
    from ml.governance import approvals

    _echo(
        approvals.register_candidate(
            _model(model), version, user=user, role=role, audit_path=audit_log
        )
    )


@app.command()
def request(
    version: VersionArg,
    role: RoleOpt,
    user: UserOpt = None,
    model: ModelArg = None,
    audit_log: AuditOpt = None,
) -> None:
    """Ask for a review of candidate VERSION."""
    from ml.governance import approvals

    _echo(
        approvals.request_review(
            _model(model), version, user=user, role=role, audit_path=audit_log
        )
    )


@app.command()
def approve(
    version: VersionArg,
    role: RoleOpt,
    user: UserOpt = None,
    model: ModelArg = None,
    comment: Annotated[str, typer.Option(help="Why, for the record.")] = "",
    audit_log: AuditOpt = None,
) -> None:
    """Approve candidate VERSION (reviewers only; never your own model)."""
    from ml.governance import approvals

    _echo(
        approvals.approve(
            _model(model), version, user=user, role=role, comment=comment, audit_path=audit_log
        )
    )


@app.command("auto-approve")
def auto_approve(version: VersionArg, model: ModelArg = None, audit_log: AuditOpt = None) -> None:
    """Approve VERSION if an auto_approval policy in governance.yaml passes (none by default)."""
    from ml.governance.auto_approval import auto_approve as evaluate_and_approve

    transition, evaluations = evaluate_and_approve(_model(model), version, audit_path=audit_log)
    for evaluation in evaluations:
        failed = [check for check, ok in evaluation.checks.items() if not ok]
        typer.echo(f"policy {evaluation.policy}: " + (f"failed {failed}" if failed else "passed"))
    if transition is None:
        typer.echo("not approved automatically: a reviewer decides (`mlops governance approve`)")
        return
    _echo(transition)


@app.command()
def reject(
    version: VersionArg,
    role: RoleOpt,
    reason: Annotated[str, typer.Option(help="Why (required, recorded).")],
    user: UserOpt = None,
    model: ModelArg = None,
    audit_log: AuditOpt = None,
) -> None:
    """Reject VERSION (a candidate or an approved version)."""
    from ml.governance import approvals

    _echo(
        approvals.reject(
            _model(model), version, user=user, role=role, reason=reason, audit_path=audit_log
        )
    )


@app.command()
def release(
    version: VersionArg,
    role: RoleOpt,
    alias: Annotated[str, typer.Option(help="challenger (canary / A-B share) or shadow.")],
    user: UserOpt = None,
    model: ModelArg = None,
    audit_log: AuditOpt = None,
) -> None:
    """Release approved VERSION as challenger or shadow (release managers only)."""
    from ml.governance import approvals

    _echo(
        approvals.release(
            _model(model), version, alias, user=user, role=role, audit_path=audit_log
        )
    )


@app.command()
def promote(
    version: VersionArg,
    role: RoleOpt,
    user: UserOpt = None,
    model: ModelArg = None,
    audit_log: AuditOpt = None,
) -> None:
    """Put approved VERSION into production (release managers only) and make it champion."""
    from ml.governance import approvals

    _echo(
        approvals.promote_to_production(
            _model(model), version, user=user, role=role, audit_path=audit_log
        )
    )


@app.command()
def rollback(
    role: RoleOpt,
    reason: Annotated[str, typer.Option(help="Why (recorded on the version and in the log).")],
    user: UserOpt = None,
    model: ModelArg = None,
    audit_log: AuditOpt = None,
) -> None:
    """Restore previous-champion to production (release managers only); champion → rejected."""
    from ml.governance import approvals

    _echo(
        approvals.rollback(
            _model(model), user=user, role=role, reason=reason, audit_path=audit_log
        )
    )


@app.command()
def status(model: ModelArg = None) -> None:
    """Show the governance state of every version."""
    from ml.governance import approvals

    rows = approvals.status(_model(model))
    typer.echo(
        f"{'version':>7}  {'status':<10}  {'owner':<12}  {'approved by':<12}  fairness  aliases"
    )
    for r in rows:
        typer.echo(
            f"{r.version:>7}  {r.status:<10}  {r.owner:<12}  {r.approved_by:<12}  "
            f"{r.fairness_gate:<8}  {', '.join(r.aliases) or '-'}"
        )


@app.command("verify-log")
def verify_log(
    path: Annotated[Path | None, typer.Argument(help=AUDIT_HELP)] = None,
) -> None:
    """Check the local log and the object store's copy; exit 1 naming each first bad line."""
    from ml.governance import audit

    results = audit.verify_copies(path)
    if not results:
        missing = path or audit.default_path()
        raise UserError(f"no audit log at {missing}", "pass its path, or run `mlops demo` first")
    for where, result in results.items():
        if result.ok:
            typer.echo(f"{result.summary()} ({where})")
        else:
            typer.secho(f"error: {result.summary()} ({where})", err=True, fg=typer.colors.RED)
    if not all(result.ok for result in results.values()):
        raise typer.Exit(1)


@app.command()
def card(
    version: VersionArg,
    model: ModelArg = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder (default: build/model_cards/<model>/v<version>)."),
    ] = None,
) -> None:
    """Regenerate the model card of VERSION from MLflow and the embedded feature store."""
    from ml.governance.model_card import card_for_version
    from ml.settings import get_settings

    _connect()
    settings = get_settings()
    name = _model(model)
    result = card_for_version(name, version, settings, out_dir=out)
    gate = "passed" if result.fairness_passed else "FAILED: " + "; ".join(result.fairness_reasons)
    typer.echo(f"model card: {result.md} and {result.html}; fairness gate {gate}")


@app.command()
def permissions(
    model: ModelArg = None,
    apply_to: Annotated[
        str | None,
        typer.Option(
            help="A basic-auth MLflow server to apply the plan to (admin credentials "
            "from MLFLOW_TRACKING_USERNAME/PASSWORD)."
        ),
    ] = None,
) -> None:
    """Print (and optionally apply) the MLflow basic-auth permission plan of the roles."""
    from ml.governance.permissions import apply_permission_plan, permission_plan, plan_table

    plan = permission_plan(_model(model))
    typer.echo(plan_table(plan))
    if apply_to:
        created = apply_permission_plan(plan, apply_to, create_missing_users=False)
        typer.echo(f"applied {len(plan)} grants to {apply_to}; users created: {sorted(created)}")


@app.command()
def users(
    file: Annotated[
        Path, typer.Option(help="JSON object of user name to password (a mounted Secret).")
    ],
) -> None:
    """Create or update the platform's workload users on the basic-auth MLflow server (admin)."""
    from ml.governance.permissions import ensure_users, read_users_file
    from ml.settings import get_settings

    wanted = read_users_file(file)
    _connect()
    uri = get_settings().mlflow_tracking_uri
    if uri is None:
        raise UserError(
            "MLOPS_MLFLOW_TRACKING_URI is not set", "point it at the basic-auth MLflow server"
        )
    for user, what in ensure_users(wanted, uri).items():
        typer.echo(f"MLflow user {user}: {what}")


def _model(model: str | None) -> str:
    """The model name, and connect to the tracking server every command needs."""
    from ml.settings import get_settings

    _connect()
    return model or get_settings().model_name


def _connect() -> None:
    """Use the configured tracking server, else the embedded demo's SQLite store."""
    import mlflow

    from ml.settings import apply_process_defaults, get_settings
    from ml.tracking import require_tracking_server

    apply_process_defaults()
    settings = get_settings()
    uri = settings.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        require_tracking_server(uri)
    else:
        database = settings.mlflow_dir / "mlflow.db"
        if not database.exists():
            raise UserError(
                f"no MLflow tracking server configured and no embedded store at {database}",
                "set MLOPS_MLFLOW_TRACKING_URI or run `mlops demo` first",
            )
        uri = f"sqlite:///{database}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)


def _echo(transition) -> None:
    t = transition
    typer.echo(
        f"{t.model_name} v{t.version}: {t.from_status or 'unregistered'} → {t.to_status} "
        f"({t.action} by {t.user} as {t.role}; audit {t.audit_hash[:12]})"
    )
