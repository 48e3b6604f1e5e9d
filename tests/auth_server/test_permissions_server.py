"""The permission plan and the workload users, applied to the real server through its auth API."""

from __future__ import annotations

from mlflow.server.auth.client import AuthServiceClient

from ml.governance.permissions import ensure_users
from tests.auth_server.conftest import ADMIN, HTTP, MODEL


def test_plan_is_applied_and_enforced_by_the_server(server, monkeypatch):
    uri, passwords = server
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    client = AuthServiceClient(uri)
    assert client.get_user_permission("carol", "registered_model", MODEL).permission == "MANAGE"
    tag = {"name": MODEL, "key": "note", "value": "x"}
    api = f"{uri}/api/2.0/mlflow"
    as_reader = HTTP.post(
        f"{api}/registered-models/set-tag", json=tag, auth=("erin", passwords["erin"])
    )
    as_reviewer = HTTP.post(
        f"{api}/registered-models/set-tag", json=tag, auth=("bob", passwords["bob"])
    )
    assert as_reader.status_code == 403
    assert as_reviewer.status_code == 200


def test_workload_users_are_created_then_updated(server, monkeypatch):
    uri, _ = server
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    users = {"serving": "serving-Pw-1", "pipeline": "pipeline-Pw-1"}
    assert ensure_users(users, uri) == {"pipeline": "created", "serving": "created"}
    users["serving"] = "serving-Pw-2"
    assert ensure_users(users, uri)["serving"] == "updated"
    api = f"{uri}/api/2.0/mlflow"
    new, old = ("serving", "serving-Pw-2"), ("serving", "serving-Pw-1")
    assert HTTP.get(f"{api}/experiments/search?max_results=1", auth=new).status_code == 200
    assert HTTP.get(f"{api}/experiments/search?max_results=1", auth=old).status_code == 401
