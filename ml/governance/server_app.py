"""The MLflow server app ``mlops-governance``: MLflow's basic auth plus the governance write rule.

``mlflow server --app-name mlops-governance`` (entry point in the ``mlflow.app`` group of
pyproject.toml). Basic auth grants per registered model READ < USE < EDIT < MANAGE, and an
approval is a tag write like any other: the pipeline's account needs EDIT to register versions,
so with basic auth alone it could approve them with one REST call. This app keeps basic auth
(users, passwords, those permissions) and adds one check after it, on every route that can
write a model-version tag or a registry alias: a ``governance.*`` tag or any alias may be
written only by a user whose roles in ``governance.yaml`` allow an action that writes it
(:mod:`ml.governance.writes`). Admins are not exempt: approving is a role, not a privilege.

The routes are MLflow 3.17's REST API under ``/api/2.0`` and ``/ajax-api/2.0`` (the UI's); its
GraphQL mutations only search, and its FastAPI routes do not touch the registry. The request is
parsed with MLflow's own request parser, so the check sees exactly what the handler will.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from contract.commands import MLFLOW_APP as APP_NAME  # noqa: F401 (re-exported for tests)

# (route under the API prefix, method) -> the MLflow request message it carries.
_GOVERNED_ROUTES = {
    ("/mlflow/model-versions/set-tag", "POST"): "SetModelVersionTag",
    ("/mlflow/model-versions/delete-tag", "DELETE"): "DeleteModelVersionTag",
    ("/mlflow/model-versions/create", "POST"): "CreateModelVersion",
    ("/mlflow/registered-models/alias", "POST"): "SetRegisteredModelAlias",
    ("/mlflow/registered-models/alias", "DELETE"): "DeleteRegisteredModelAlias",
}
# Any static prefix, then MLflow's versioned API prefix; the route follows.
_API_ROUTE = re.compile(r".*?/(?:ajax-)?api/\d+\.\d+(/mlflow/.+)")


def create_app():
    """The basic-auth app (Flask, or FastAPI around it under uvicorn) with the governance check.

    Registered after basic auth's own ``before_request``, so the user is authenticated (and an
    unauthenticated or unpermitted request already answered) before the check runs.
    """
    from mlflow.server import app as flask_app
    from mlflow.server.auth import create_app as basic_auth_app

    served = basic_auth_app(flask_app)
    flask_app.before_request(check_governed_write)
    return served


def check_governed_write():
    """Flask ``before_request``: a 403 for a governance write the user's roles do not allow."""
    from flask import request

    message_name = _governed_message(request.path, request.method)
    if message_name is None:
        return None
    from flask import g

    from ml.governance.config import load_governance_config
    from ml.governance.writes import may_write

    config = load_governance_config()
    user = getattr(g, "mlflow_authenticated_user", None)
    user = config.governance_user(user) if user else None
    message = _message(message_name)
    for what, actions in _writes(message_name, message):
        if user is None or not may_write(config, user, actions):
            return _forbidden(user, what, actions)
    refusal = _approval_refusal(message_name, message, user)
    return None if refusal is None else _refused(f"governance: {refusal}")


def _governed_message(path: str, method: str) -> str | None:
    match = _API_ROUTE.fullmatch(path)
    return _GOVERNED_ROUTES.get((match.group(1), method)) if match else None


def _message(message_name: str):
    """The request's MLflow message, parsed as the handler will parse it."""
    from mlflow.protos import model_registry_pb2
    from mlflow.server.handlers import _get_request_message

    return _get_request_message(getattr(model_registry_pb2, message_name)())


def _writes(message_name: str, message) -> Iterator[tuple[str, frozenset[str]]]:
    """(what is written, the actions that may write it) for each governed write in the request."""
    from ml.governance.writes import actions_moving_alias, actions_writing_tag

    if message_name == "SetModelVersionTag":
        tags = [(message.key, message.value)]
    elif message_name == "DeleteModelVersionTag":
        tags = [(message.key, None)]
    elif message_name == "CreateModelVersion":
        tags = [(tag.key, tag.value) for tag in message.tags]
    else:  # an alias is set or deleted
        yield f"alias {message.alias!r}", actions_moving_alias(message.alias)
        return
    for key, value in tags:
        actions = actions_writing_tag(key, value)
        if actions is not None:
            yield f"tag {key}={value}" if value is not None else f"tag {key}", actions


def _approval_refusal(message_name: str, message, user: str | None) -> str | None:
    """Why the request may not approve a version; None when it approves nothing or may.

    Approving writes ``governance.status=approved`` on a version not yet approved, or the
    ``approved_by``/``approved_at`` tags; a release re-writes ``approved`` on an approved version
    and a rollback on the production one, which are not approvals. The rules: never one's own
    version (separation of duties), only after a review was requested, never at creation.
    """
    from ml.governance.approvals import (
        APPROVAL_TAGS,
        APPROVED,
        OWNER_TAG,
        PRODUCTION,
        REVIEW_TAG,
        STATUS_TAG,
    )

    def approves(key: str, value: str | None) -> bool:
        return key in APPROVAL_TAGS or (key == STATUS_TAG and value == APPROVED)

    if message_name == "CreateModelVersion":
        if any(approves(tag.key, tag.value) for tag in message.tags):
            return "a version is approved after its review, never created approved"
        return None
    if message_name != "SetModelVersionTag" or not approves(message.key, message.value):
        return None
    from mlflow.server.handlers import _get_model_registry_store

    tags = _get_model_registry_store().get_model_version(message.name, message.version).tags
    if message.key == STATUS_TAG and tags.get(STATUS_TAG) in (APPROVED, PRODUCTION):
        return None
    if tags.get(OWNER_TAG) == user:
        return f"{user!r} may not approve a version they registered"
    if REVIEW_TAG not in tags:
        ask = "mlops governance request"
        return f"nobody requested a review of version {message.version} ({ask})"
    return None


def _forbidden(user: str | None, what: str, actions: frozenset[str]):
    from ml.governance.approvals import roles_allowed
    from ml.governance.config import load_governance_config

    config = load_governance_config()
    roles = sorted({role for action in actions for role in roles_allowed(config, action)})
    needs = (
        f"a role in governance.yaml that may {' or '.join(sorted(actions))} "
        f"({', '.join(roles) or 'no role may'})"
        if actions
        else "nobody may write it (not a tag the approval workflow writes)"
    )
    return _refused(f"governance: {user!r} may not write {what}: {needs}")


def _refused(message: str):
    from flask import jsonify

    response = jsonify({"error_code": "PERMISSION_DENIED", "message": message})
    response.status_code = 403
    return response
