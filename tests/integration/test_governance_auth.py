"""The permission plan applied to a real `mlflow server --app-name basic-auth`, then enforced.

Starting the auth server takes 60-100 s on a 2-core machine (it imports and migrates two
databases), more than this suite's budget, so the test is opt-in: MLOPS_TEST_BASIC_AUTH=1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from ml.governance.permissions import apply_permission_plan, permission_plan

ADMIN_PASSWORD = "test-admin-Pw-1234"  # a throwaway server on loopback, deleted after the test
PORT = 5098

pytestmark = pytest.mark.skipif(
    os.environ.get("MLOPS_TEST_BASIC_AUTH") != "1",
    reason="opt-in (starting the basic-auth server takes ~90 s): set MLOPS_TEST_BASIC_AUTH=1",
)


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory):
    home = tmp_path_factory.mktemp("auth")
    ini = home / "auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{home / 'auth.db'}\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # fmt: skip
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
               "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
               "--artifacts-destination", str(home / "artifacts"),
               "--host", "127.0.0.1", "--port", str(PORT), "--workers", "1"]  # fmt: skip
    log = (home / "server.log").open("w")
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{PORT}"
    try:
        _wait(uri, process)
        yield uri
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


def _wait(uri: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{uri}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail("mlflow server --app-name basic-auth did not start")


def test_plan_is_applied_and_enforced_by_the_server(auth_server, monkeypatch):
    from mlflow.server.auth.client import AuthServiceClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    admin = ("admin", ADMIN_PASSWORD)
    api = f"{auth_server}/api/2.0/mlflow"
    httpx.post(f"{api}/registered-models/create", json={"name": "credit-risk"}, auth=admin)
    passwords = apply_permission_plan(
        permission_plan("credit-risk"), auth_server, create_missing_users=True
    )
    client = AuthServiceClient(auth_server)
    assert client.get_user_permission("carol", "registered_model", "credit-risk").permission == (
        "MANAGE"
    )
    tag = {"name": "credit-risk", "key": "governance.note", "value": "x"}
    as_reader = httpx.post(
        f"{api}/registered-models/set-tag", json=tag, auth=("erin", passwords["erin"])
    )
    as_reviewer = httpx.post(
        f"{api}/registered-models/set-tag", json=tag, auth=("bob", passwords["bob"])
    )
    assert as_reader.status_code == 403
    assert as_reviewer.status_code == 200


def test_workload_users_are_created_then_updated(auth_server, monkeypatch):
    from ml.governance.permissions import ensure_users

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN_PASSWORD)
    users = {"serving": "serving-Pw-1", "pipeline": "pipeline-Pw-1"}
    assert ensure_users(users, auth_server) == {"pipeline": "created", "serving": "created"}
    users["serving"] = "serving-Pw-2"
    assert ensure_users(users, auth_server)["serving"] == "updated"
    api = f"{auth_server}/api/2.0/mlflow"
    new, old = ("serving", "serving-Pw-2"), ("serving", "serving-Pw-1")
    assert httpx.get(f"{api}/experiments/search?max_results=1", auth=new).status_code == 200
    assert httpx.get(f"{api}/experiments/search?max_results=1", auth=old).status_code == 401
