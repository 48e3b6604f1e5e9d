"""How the governance roles map onto MLflow's basic-auth permissions on the tracking server.

The Kubernetes MLflow server runs ``mlflow server --app-name basic-auth``. Its permission model is
coarse: per user and resource, one of READ < USE < EDIT < MANAGE. Setting a version's tags or an
alias is an update (EDIT); granting permissions is MANAGE. So the server can stop a reader from
changing the registry at all, but it cannot tell an approval from any other tag write: the
fine-grained rules (which role may make which transition, no approving your own model) are
enforced by :mod:`ml.governance.approvals`, which every `mlops governance` command goes through.

:func:`permission_plan` derives each user's permission on a registered model from the roles they
hold in ``governance.yaml`` (the highest permission of their roles); :func:`apply_permission_plan`
makes a running basic-auth server match it through ``AuthServiceClient``, authenticating as the
admin from ``MLFLOW_TRACKING_USERNAME`` / ``MLFLOW_TRACKING_PASSWORD``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from ml.errors import ServiceUnavailable, UserError
from ml.governance.config import GovernanceConfig, load_governance_config

RESOURCE_TYPE = "registered_model"
_RANK = {"NO_PERMISSIONS": 0, "READ": 1, "USE": 2, "EDIT": 3, "MANAGE": 4}


@dataclass(frozen=True)
class Grant:
    user: str
    resource_type: str
    resource_id: str
    permission: str
    because: str  # the roles that need it, for the plan's readers


def permission_plan(model_name: str, config: GovernanceConfig | None = None) -> list[Grant]:
    """One grant per configured user on ``model_name``, sorted by user.

    A user without roles gets ``default_mlflow_permission`` (READ: serving only reads).
    """
    config = config or load_governance_config()
    plan = []
    for user, roles in sorted(config.users.items()):
        permissions = [config.roles[role].mlflow_permission for role in roles]
        best = max(permissions, key=_RANK.__getitem__, default=config.default_mlflow_permission)
        because = ", ".join(roles) or "no role: default"
        plan.append(Grant(user, RESOURCE_TYPE, model_name, best, because))
    return plan


def apply_permission_plan(
    plan: list[Grant], tracking_uri: str, *, create_missing_users: bool = False
) -> dict[str, str]:
    """Make the basic-auth server at ``tracking_uri`` grant exactly ``plan``.

    Args:
        plan: from :func:`permission_plan`.
        tracking_uri: the server, e.g. ``http://mlflow:5000``; the admin's credentials come from
            ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD``.
        create_missing_users: create users the server does not know, with a random password.

    Returns:
        The generated passwords of users created now (hand them over once; they are not kept).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    client = AuthServiceClient(tracking_uri)
    created: dict[str, str] = {}
    try:
        for grant in plan:
            if not _user_exists(client, grant.user):
                if not create_missing_users:
                    raise UserError(
                        f"user {grant.user!r} does not exist on {tracking_uri}",
                        "create it first or pass create_missing_users=True",
                    )
                created[grant.user] = secrets.token_urlsafe(18)
                client.create_user(grant.user, created[grant.user])
            client.grant_user_permission(
                grant.user, grant.resource_type, grant.resource_id, grant.permission
            )
    except MlflowException as error:
        raise ServiceUnavailable(
            f"the MLflow auth API at {tracking_uri} refused the plan: {error.message[:200]}",
            "check the admin credentials and that the server runs --app-name basic-auth",
        ) from None
    return created


def ensure_users(users: dict[str, str], tracking_uri: str) -> dict[str, str]:
    """Make each ``user`` exist on the basic-auth server with ``password`` (idempotent).

    The platform's workloads each authenticate as their own user (the passwords come from the
    platform's Secrets); the admin's credentials are this process's own (the MLflow client reads
    ``~/.mlflow/credentials``). Their permissions are the server's default (READ) plus what they
    own: MLflow gives the creator of an experiment or a registered model MANAGE on it.

    Returns:
        user -> "created" or "updated".
    """
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    client = AuthServiceClient(tracking_uri)
    done: dict[str, str] = {}
    try:
        for user, password in sorted(users.items()):
            if _user_exists(client, user):
                client.update_user_password(user, password)
                done[user] = "updated"
            else:
                client.create_user(user, password)
                done[user] = "created"
    except MlflowException as error:
        raise ServiceUnavailable(
            f"the MLflow auth API at {tracking_uri} refused to manage users: "
            f"{error.message[:200]}",
            "check the admin credentials and that the server runs --app-name basic-auth",
        ) from None
    return done


def read_users_file(path) -> dict[str, str]:
    """``{user: password}`` from the JSON file the platform mounts.

    Raises:
        UserError: the file is missing or is not such an object.
    """
    import json
    from pathlib import Path

    try:
        users = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise UserError(
            f"cannot read the users file {path}: {error}", "mount the Secret"
        ) from None
    if not isinstance(users, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in users.items()
    ):
        raise UserError(
            f"{path} is not a JSON object of user name to password", "fix the mounted Secret"
        )
    return users


def _user_exists(client, user: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_user(user)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def plan_table(plan: list[Grant]) -> str:
    """The plan as a Markdown table (for docs and `mlops governance permissions`)."""
    rows = [f"| {g.user} | {g.resource_id} | {g.permission} | {g.because} |" for g in plan]
    return "\n".join(
        ["| user | registered model | permission | roles |", "|---|---|---|---|", *rows]
    )
