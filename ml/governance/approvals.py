"""The approval workflow: a model version moves candidate → approved → production by roles.

State lives on the MLflow model version as the tag ``governance.status``:

* ``register`` (data scientist): a new version becomes ``candidate``; the user is its owner
  (``governance.owner``).
* ``request`` (data scientist): asks for a review of a candidate.
* ``approve`` (reviewer, never the owner): a reviewed candidate becomes ``approved``.
* ``reject`` (reviewer or release manager): a candidate or approved version becomes ``rejected``.
* ``promote`` (release manager): an approved version with a model card and a passed fairness
  gate becomes ``production`` and the ``champion`` alias; the previous production version goes
  back to ``approved`` (it stays servable, so a rollback can restore it).
* ``rollback`` (release manager): ``previous-champion`` becomes ``production`` again and the
  version rolled back from becomes ``rejected``.

The actor is the MLflow server's authenticated user when the server authenticates (``user``
may then be None; a different name is refused), else the self-declared ``user``
(:mod:`ml.governance.identity`); the audit entry records which (``identity``). Who holds which
role is in ``governance.yaml``; the MLflow server app ``mlops-governance``
(:mod:`ml.governance.server_app`) refuses the same tag and alias writes to anyone else. Each
transition is recorded in the audit log (:mod:`ml.governance.audit`) and its entry hash is kept
on the version (``governance.audit_hash``). Serving must call :func:`require_servable` (or check
:data:`SERVABLE`) before loading a version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException

from ml import registry
from ml.errors import UserError
from ml.governance import audit
from ml.governance.config import Action, GovernanceConfig, load_governance_config
from ml.governance.identity import resolve_actor

STATUS_TAG = "governance.status"
OWNER_TAG = "governance.owner"
REVIEW_TAG = "governance.review_requested_by"
CARD_TAG = "governance.model_card"
FAIRNESS_TAG = "governance.fairness_gate"
AUDIT_HASH_TAG = "governance.audit_hash"
APPROVED_BY_TAG, APPROVED_AT_TAG = "governance.approved_by", "governance.approved_at"
APPROVAL_TAGS = frozenset({APPROVED_BY_TAG, APPROVED_AT_TAG})

CANDIDATE, APPROVED, PRODUCTION, REJECTED = "candidate", "approved", "production", "rejected"
STATUSES = (CANDIDATE, APPROVED, PRODUCTION, REJECTED)
SERVABLE = frozenset({APPROVED, PRODUCTION})


@dataclass(frozen=True)
class Transition:
    """One recorded change of a version's governance status."""

    model_name: str
    version: str
    action: str
    user: str
    role: str
    from_status: str | None
    to_status: str
    audit_hash: str


def register_candidate(
    model_name: str,
    version: str,
    *,
    user: str | None,
    role: str,
    audit_path: Path | None = None,
    config: GovernanceConfig | None = None,
) -> Transition:
    """Enter a freshly registered version into the workflow as ``candidate`` owned by ``user``."""
    return _transition(
        model_name, version, "register", user, role, (None,), CANDIDATE,
        {OWNER_TAG: user}, {}, audit_path, config,
    )  # fmt: skip


def request_review(
    model_name: str,
    version: str,
    *,
    user: str | None,
    role: str,
    audit_path: Path | None = None,
    config: GovernanceConfig | None = None,
) -> Transition:
    """Ask reviewers to look at a candidate (its model card should exist by now)."""
    return _transition(
        model_name, version, "request", user, role, (CANDIDATE,), CANDIDATE,
        {REVIEW_TAG: user}, {}, audit_path, config,
    )  # fmt: skip


def approve(
    model_name: str,
    version: str,
    *,
    user: str | None,
    role: str,
    comment: str = "",
    automatic: dict | None = None,
    audit_path: Path | None = None,
    config: GovernanceConfig | None = None,
) -> Transition:
    """Approve a reviewed candidate; refused for the version's own owner.

    ``automatic`` (the policy and its checks, from :mod:`ml.governance.auto_approval`) marks
    the audit entry as an automatic approval.
    """
    details = {"comment": comment, "automatic": automatic or False}
    return _transition(
        model_name, version, "approve", user, role, (CANDIDATE,), APPROVED,
        {APPROVED_BY_TAG: user, APPROVED_AT_TAG: _now()},
        details, audit_path, config,
    )  # fmt: skip


def reject(
    model_name: str,
    version: str,
    *,
    user: str | None,
    role: str,
    reason: str,
    audit_path: Path | None = None,
    config: GovernanceConfig | None = None,
) -> Transition:
    """Reject a candidate or an approved version; ``reason`` is required and recorded."""
    if not reason.strip():
        raise UserError("a rejection needs a reason", "pass --reason '...'")
    return _transition(
        model_name, version, "reject", user, role, (CANDIDATE, APPROVED), REJECTED,
        {"governance.rejected_by": user, "governance.reason": reason[:500]},
        {"reason": reason}, audit_path, config,
    )  # fmt: skip


# Aliases a release may set; `champion` moves only through promote_to_production.
RELEASE_ALIASES = ("challenger", "shadow")


def release(
    model_name: str,
    version: str,
    alias: str,
    *,
    user: str | None,
    role: str,
    audit_path: Path | None = None,
    config: GovernanceConfig | None = None,
) -> Transition:
    """Point ``alias`` (challenger or shadow) at an approved, documented version.

    The version stays ``approved``; serving gives it the share the traffic policy assigns to
    that alias (a canary step, an A/B weight, or a shadow copy).
    """
    if alias not in RELEASE_ALIASES:
        raise UserError(
            f"cannot release to alias {alias!r}",
            f"use one of {', '.join(RELEASE_ALIASES)}; champion moves only by `promote`",
        )
    result = _transition(
        model_name, str(version), "release", user, role, (APPROVED,), APPROVED,
        {f"governance.released_as_{alias}_by": user}, {"alias": alias}, audit_path, config,
        precondition=_require_documented,
    )  # fmt: skip
    MlflowClient().set_registered_model_alias(model_name, alias, str(version))
    return result


def promote_to_production(
    model_name: str,
    version: str,
    *,
    user: str | None,
    role: str,
    set_champion: bool = True,
    audit_path: Path | None = None,
    config: GovernanceConfig | None = None,
) -> Transition:
    """Make an approved, documented, fairness-gated version ``production`` (and ``champion``).

    The version that was in production before returns to ``approved``.
    """
    version = str(version)
    previous = [v for v in production_versions(model_name) if v != version]
    result = _transition(
        model_name, version, "promote", user, role, (APPROVED,), PRODUCTION,
        {"governance.promoted_by": user, "governance.promoted_at": _now()},
        {"previous_production": previous, "set_champion": set_champion}, audit_path, config,
        precondition=_require_documented,
    )  # fmt: skip
    if set_champion:
        registry.promote(model_name, version)
        _clear_release_aliases(model_name, version)
    for old in previous:
        MlflowClient().set_model_version_tag(model_name, old, STATUS_TAG, APPROVED)
    return result


def _clear_release_aliases(model_name: str, version: str) -> None:
    """A version that became champion no longer also serves as challenger or shadow."""
    client = MlflowClient()
    for alias in RELEASE_ALIASES:
        current = registry.alias_version(model_name, alias)
        if current is not None and str(current.version) == version:
            client.delete_registered_model_alias(model_name, alias)


def rollback(
    model_name: str,
    *,
    user: str | None,
    role: str,
    reason: str,
    audit_path: Path | None = None,
    config: GovernanceConfig | None = None,
) -> Transition:
    """Restore ``previous-champion`` to production; the current champion becomes ``rejected``."""
    config = config or load_governance_config()
    actor = resolve_actor(user, config)
    user = actor.user
    _authorize(config, user, role, "rollback")
    restore = registry.alias_version(model_name, registry.PREVIOUS_CHAMPION)
    current = registry.alias_version(model_name, registry.CHAMPION)
    if restore is None or current is None:
        raise UserError(
            f"{model_name} has no champion and previous-champion to roll back between",
            "promote at least two versions first",
        )
    require_servable(model_name, str(restore.version))
    registry.rollback(model_name)
    client = MlflowClient()
    client.set_model_version_tag(model_name, current.version, STATUS_TAG, REJECTED)
    client.set_model_version_tag(model_name, current.version, "governance.reason", reason[:500])
    entry = audit.append(
        "rollback",
        audit.model_subject(model_name, restore.version),
        user,
        {
            "role": role,
            "from_version": str(current.version),
            "reason": reason,
            "identity": actor.identity,
        },
        path=audit_path,
    )
    _set_tags(model_name, str(restore.version), {STATUS_TAG: PRODUCTION}, entry["hash"])
    return Transition(
        model_name, str(restore.version), "rollback", user, role,
        restore.tags.get(STATUS_TAG), PRODUCTION, entry["hash"],
    )  # fmt: skip


def servable_status(model_version) -> str:
    """The version's status if the state machine lets it be served, else :class:`UserError`.

    The one servability rule: serving (``ml.serve.models.ensure_servable``) and rollback both
    call it. ``model_version`` is an MLflow ``ModelVersion`` (``name``, ``version``, ``tags``).
    """
    status = (model_version.tags or {}).get(STATUS_TAG)
    if status not in SERVABLE:
        name, version = model_version.name, model_version.version
        raise UserError(
            f"{name} version {version} is {status or 'not in the approval workflow'}, "
            "not approved: it may not be served",
            f"have a reviewer run `mlops governance approve {version}`",
        )
    return status


def require_servable(model_name: str, version: str) -> str:
    """:func:`servable_status` of ``model_name`` version ``version`` as the registry has it."""
    return servable_status(_version(model_name, str(version)))


@dataclass(frozen=True)
class VersionStatus:
    version: str
    status: str
    owner: str
    approved_by: str
    aliases: list[str]
    fairness_gate: str
    model_card: str


def status(model_name: str) -> list[VersionStatus]:
    """The governance state of every version of ``model_name``, newest first."""
    versions = _all_versions(model_name)
    if not versions:
        raise UserError(f"no registered model {model_name!r}", "check the name (mlops demo)")
    aliases: dict[str, list[str]] = {}
    for alias, number in MlflowClient().get_registered_model(model_name).aliases.items():
        aliases.setdefault(str(number), []).append(alias)
    return [
        VersionStatus(
            version=str(v.version),
            status=v.tags.get(STATUS_TAG, "-"),
            owner=v.tags.get(OWNER_TAG, "-"),
            approved_by=v.tags.get(APPROVED_BY_TAG, "-"),
            aliases=sorted(aliases.get(str(v.version), [])),
            fairness_gate=v.tags.get(FAIRNESS_TAG, "-"),
            model_card=v.tags.get(CARD_TAG, "-"),
        )
        for v in sorted(versions, key=lambda v: int(v.version), reverse=True)
    ]


def production_versions(model_name: str) -> list[str]:
    """Versions whose status is ``production``."""
    return [
        str(v.version) for v in _all_versions(model_name) if v.tags.get(STATUS_TAG) == PRODUCTION
    ]


def roles_allowed(config: GovernanceConfig, action: str) -> list[str]:
    """The roles whose permissions include ``action``."""
    return sorted(name for name, role in config.roles.items() if action in role.actions)


def _transition(
    model_name: str,
    version: str,
    action: Action,
    user: str | None,
    role: str,
    allowed_from: tuple[str | None, ...],
    to_status: str,
    tags: dict[str, str | None],
    details: dict,
    audit_path: Path | None,
    config: GovernanceConfig | None,
    precondition: Callable[[ModelVersion], None] | None = None,
) -> Transition:
    config = config or load_governance_config()
    version = str(version)
    actor = resolve_actor(user, config)
    user = actor.user
    # The callers name the actor in tags (owner, approved_by, ...) as they were called: None
    # where the server is to say who it is.
    resolved = {key: user if value is None else value for key, value in tags.items()}
    _authorize(config, user, role, action)
    current = _version(model_name, version)
    from_status = current.tags.get(STATUS_TAG)
    if from_status not in allowed_from:
        raise UserError(
            f"cannot {action} {model_name} version {version}: it is "
            f"{from_status or 'not registered for governance'}",
            _legal_hint(action, allowed_from),
        )
    _check_separation_of_duties(current, action, user)
    if precondition is not None:
        precondition(current)
    entry = audit.append(
        action,
        audit.model_subject(model_name, version),
        user,
        {"role": role, "from": from_status, "to": to_status, "identity": actor.identity} | details,
        path=audit_path,
    )
    try:
        _set_tags(model_name, version, {**resolved, STATUS_TAG: to_status}, entry["hash"])
    except MlflowException as error:
        _record_refusal(entry, error, audit_path)
        raise UserError(
            f"the MLflow server refused to {action} {model_name} version {version}: "
            f"{error.message[:300]}",
            "act with the credentials of a user who holds that role",
        ) from None
    return Transition(
        model_name, version, action, user, role, from_status, to_status, entry["hash"]
    )


def _authorize(config: GovernanceConfig, user: str, role: str, action: str) -> None:
    if user not in config.users:
        raise UserError(
            f"user {user!r} is not known to governance",
            "add them with their roles under `users:` in governance.yaml",
        )
    if role not in config.roles:
        raise UserError(f"unknown role {role!r}", f"use one of {sorted(config.roles)}")
    if role not in config.users[user]:
        held = config.users[user] or ["no roles"]
        raise UserError(
            f"user {user!r} does not hold the role {role!r} (holds: {', '.join(held)})",
            "ask an administrator to grant it in governance.yaml",
        )
    if action not in config.roles[role].actions:
        raise UserError(
            f"role {role!r} may not {action}",
            f"roles that may: {', '.join(roles_allowed(config, action)) or 'none'}",
        )


def _check_separation_of_duties(version: ModelVersion, action: str, user: str) -> None:
    if action != "approve":
        return
    owner = version.tags.get(OWNER_TAG)
    if owner == user:
        raise UserError(
            f"{user!r} registered {version.name} version {version.version} and may not approve it",
            "ask a reviewer who is not the owner",
        )
    if version.tags.get(REVIEW_TAG) is None:
        raise UserError(
            f"no review was requested for {version.name} version {version.version}",
            f"the owner runs `mlops governance request {version.name} {version.version}` first",
        )


def _require_documented(version: ModelVersion) -> None:
    name, number = version.name, version.version
    if not version.tags.get(CARD_TAG):
        raise UserError(
            f"{name} version {number} has no model card; production needs one",
            f"run `mlops governance card {name} {number}`",
        )
    if version.tags.get(FAIRNESS_TAG) != "passed":
        raise UserError(
            f"{name} version {number} did not pass the fairness gate "
            f"({version.tags.get(FAIRNESS_TAG, 'not evaluated')})",
            "see the model card's fairness section; fix the model or reject it",
        )


def _legal_hint(action: str, allowed_from: tuple[str | None, ...]) -> str:
    states = ", ".join(s or "unregistered" for s in allowed_from)
    return f"{action} applies only to versions that are {states} (see `mlops governance status`)"


def _record_refusal(entry: dict, error: MlflowException, audit_path: Path | None) -> None:
    """The entry was appended before the server said no: the log must say it did not happen."""
    audit.append(
        f"{entry['action']}-refused",
        entry["subject"],
        entry["actor"],
        {"refused_entry": entry["hash"], "reason": error.message[:500]},
        path=audit_path,
    )


def _set_tags(model_name: str, version: str, tags: dict[str, str], audit_hash: str) -> None:
    client = MlflowClient()
    for key, value in {**tags, AUDIT_HASH_TAG: audit_hash}.items():
        client.set_model_version_tag(model_name, version, key, value)


def require_version(model_name: str, version: str) -> ModelVersion:
    """The registry's ``version`` of ``model_name``; :class:`UserError` if there is none."""
    return _version(model_name, version)


def _version(model_name: str, version: str) -> ModelVersion:
    try:
        return MlflowClient().get_model_version(model_name, str(version))
    except MlflowException:
        raise UserError(
            f"{model_name} has no version {version}", "see `mlops governance status <model>`"
        ) from None


def _all_versions(model_name: str) -> list[ModelVersion]:
    try:
        return list(MlflowClient().search_model_versions(f"name = '{model_name}'"))
    except MlflowException:
        return []


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
