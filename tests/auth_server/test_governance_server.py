"""A real `mlflow server --app-name mlops-governance`: only a reviewer can approve, by any route.

The server runs the project's app (basic auth plus the governance write rule) on loopback with
SQLite stores. A data scientist holds EDIT on the model (the permission plan gives it: they
register versions), so basic auth alone would let them set the approval tag; the app refuses it
through our CLI, the MLflow client and raw REST calls, and the actor is the authenticated user.
"""

from __future__ import annotations

import json

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.errors import UserError
from ml.governance import approvals, audit
from ml.governance.config import load_governance_config
from ml.governance.identity import AUTHENTICATED
from tests.auth_server.conftest import ADMIN, HTTP, MODEL


def test_only_a_reviewer_can_approve_by_any_route(server, as_user, tmp_path):
    uri, _ = server
    log = tmp_path / "audit.jsonl"
    as_user("alice")  # a data scientist with EDIT on the model, not a reviewer
    approvals.register_candidate(MODEL, "1", user=None, role="data_scientist", audit_path=log)
    approvals.request_review(MODEL, "1", user=None, role="data_scientist", audit_path=log)
    assert approvals.status(MODEL)[0].owner == "alice"  # the server said who registered it

    _refused_by_our_cli(log)
    as_user("carol")  # a release manager: MANAGE on the model, not the owner, not a reviewer
    _refused_by_the_server_even_if_our_client_is_fooled(log)
    alice = as_user("alice")
    with pytest.raises(MlflowException, match=r"may not write tag governance\.status=approved"):
        MlflowClient().set_model_version_tag(MODEL, "1", approvals.STATUS_TAG, "approved")
    for response in _raw_approval_attempts(uri, alice):
        # 403 from the governance rule; basic auth already answers 400 to the body encoded twice.
        assert response.status_code in (400, 403), response.text
        assert response.status_code == 403 or "double" in response.request.headers["x-attempt"]
    assert _status(uri) == approvals.CANDIDATE

    # EDIT is still EDIT for everything governance does not own.
    MlflowClient().set_model_version_tag(MODEL, "1", "notes", "looked fine")

    as_user("bob")
    with pytest.raises(UserError, match="authenticated to MLflow as 'bob', not 'dave'"):
        approvals.approve(MODEL, "1", user="dave", role="reviewer", audit_path=log)
    approvals.approve(MODEL, "1", user=None, role="reviewer", comment="ok", audit_path=log)
    assert _status(uri) == approvals.APPROVED
    entry = audit.read(log)[-1]
    assert (entry["actor"], entry["action"]) == ("bob", "approve")
    assert entry["details"]["identity"] == AUTHENTICATED


def test_the_champion_alias_moves_only_for_a_release_manager(server, as_user):
    uri, _ = server
    for user in ("alice", "bob"):
        response = HTTP.post(
            f"{uri}/api/2.0/mlflow/registered-models/alias",
            json={"name": MODEL, "alias": "champion", "version": "1"},
            auth=as_user(user),
        )
        assert response.status_code == 403, (user, response.text)
    admin = HTTP.post(
        f"{uri}/api/2.0/mlflow/model-versions/set-tag",
        json={"name": MODEL, "version": "1", "key": approvals.STATUS_TAG, "value": "production"},
        auth=ADMIN,
    )
    assert admin.status_code == 403  # admin of the server, not a role in governance.yaml


def test_nobody_approves_a_version_they_registered_even_with_the_reviewer_role(
    server, as_user, tmp_path
):
    uri, _ = server
    log = tmp_path / "audit.jsonl"
    dave = as_user("dave")  # data scientist and reviewer
    first = MlflowClient().get_model_version(MODEL, "1")
    version = MlflowClient().create_model_version(MODEL, first.source, first.run_id).version
    approvals.register_candidate(MODEL, version, user=None, role="data_scientist", audit_path=log)
    approvals.request_review(MODEL, version, user=None, role="data_scientist", audit_path=log)

    own = "may not approve a version they registered"
    for key, value in [(approvals.STATUS_TAG, "approved"), (approvals.APPROVED_BY_TAG, "dave")]:
        body = {"name": MODEL, "version": version, "key": key, "value": value}
        response = HTTP.post(f"{uri}/api/2.0/mlflow/model-versions/set-tag", json=body, auth=dave)
        assert response.status_code == 403 and own in response.text, response.text
    with pytest.raises(MlflowException, match=own):
        MlflowClient().set_model_version_tag(MODEL, version, approvals.STATUS_TAG, "approved")
    assert _status(uri, version) == approvals.CANDIDATE

    as_user("bob")  # another reviewer may
    approvals.approve(MODEL, version, user=None, role="reviewer", comment="ok", audit_path=log)
    assert _status(uri, version) == approvals.APPROVED


def test_a_version_nobody_asked_to_review_cannot_be_approved(server, as_user, tmp_path):
    uri, _ = server
    as_user("alice")  # registers a version and does not ask for its review
    first = MlflowClient().get_model_version(MODEL, "1")
    version = MlflowClient().create_model_version(MODEL, first.source, first.run_id).version
    approvals.register_candidate(
        MODEL, version, user=None, role="data_scientist", audit_path=tmp_path / "audit.jsonl"
    )
    body = {"name": MODEL, "version": version, "key": approvals.STATUS_TAG, "value": "approved"}
    response = HTTP.post(
        f"{uri}/api/2.0/mlflow/model-versions/set-tag", json=body, auth=as_user("bob")
    )
    assert response.status_code == 403 and "nobody requested a review" in response.text
    assert _status(uri, version) == approvals.CANDIDATE


def _refused_by_our_cli(log) -> None:
    from typer.testing import CliRunner

    from ml.cli.governance import app

    args = ["approve", "1", MODEL, "--role", "reviewer", "--audit-log", str(log)]
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, UserError)
    assert "'alice' does not hold the role 'reviewer'" in result.exception.line()


def _refused_by_the_server_even_if_our_client_is_fooled(log) -> None:
    # A client-side governance.yaml that makes carol a reviewer: the server's copy decides.
    real = load_governance_config()
    fooled = real.model_copy(update={"users": {**real.users, "carol": ["reviewer"]}})
    with pytest.raises(UserError, match=r"server refused to approve .* may not write tag"):
        approvals.approve(MODEL, "1", user=None, role="reviewer", audit_path=log, config=fooled)
    refusal = audit.read(log)[-1]  # the log says the approval it recorded first did not happen
    assert refusal["action"] == "approve-refused" and refusal["actor"] == "carol"


def _raw_approval_attempts(uri, auth) -> list[httpx.Response]:
    tag = {"name": MODEL, "version": "1", "key": approvals.STATUS_TAG, "value": "approved"}
    created = {"name": MODEL, "source": "models:/credit-risk/1",
               "tags": [{"key": approvals.STATUS_TAG, "value": "approved"}]}  # fmt: skip
    deleted = {"name": MODEL, "version": "1", "key": approvals.STATUS_TAG}
    return [
        HTTP.post(f"{uri}/api/2.0/mlflow/model-versions/set-tag", json=tag, auth=auth),
        HTTP.post(f"{uri}/ajax-api/2.0/mlflow/model-versions/set-tag", json=tag, auth=auth),
        # The handler also accepts a JSON body encoded twice (old clients).
        HTTP.post(
            f"{uri}/api/2.0/mlflow/model-versions/set-tag",
            content=json.dumps(json.dumps(tag)),
            headers={"Content-Type": "application/json", "x-attempt": "double-encoded"},
            auth=auth,
        ),
        HTTP.post(f"{uri}/api/2.0/mlflow/model-versions/create", json=created, auth=auth),
        HTTP.request(
            "DELETE", f"{uri}/api/2.0/mlflow/model-versions/delete-tag", json=deleted, auth=auth
        ),
    ]


def _status(uri, version: str = "1") -> str:
    response = HTTP.get(
        f"{uri}/api/2.0/mlflow/model-versions/get",
        params={"name": MODEL, "version": version},
        auth=ADMIN,
    )
    tags = {t["key"]: t["value"] for t in response.json()["model_version"].get("tags", [])}
    return tags.get(approvals.STATUS_TAG, "-")
