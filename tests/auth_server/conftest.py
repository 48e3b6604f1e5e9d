"""A real `mlflow server --app-name mlops-governance` on loopback, started once for this folder.

Starting it takes 20-40 s on a 2-core machine (two processes each import MLflow's server and
auth app), so these tests run in `make test-auth`, not in `make test`'s budget.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import mlflow
import pytest

from ml.governance.permissions import apply_permission_plan, permission_plan
from ml.governance.server_app import APP_NAME

ADMIN = ("admin", "test-admin-Pw-1234")  # a throwaway server on loopback, deleted after the test
PORT = 5099
MODEL = "credit-risk"
# Generous: the first requests import parts of the server lazily, on a 2-core machine in use.
HTTP = httpx.Client(timeout=120)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """(tracking URI, {user: password}) of a fresh server with one candidate version."""
    home = tmp_path_factory.mktemp("governance-server")
    process, log = _start(home)
    uri = f"http://127.0.0.1:{PORT}"
    try:
        started = time.monotonic()
        _wait(uri, process, home)
        seconds = time.monotonic() - started
        (home / "start_seconds").write_text(f"{seconds:.1f}")
        print(f"mlflow server --app-name {APP_NAME} answered in {seconds:.1f} s")
        yield uri, _setup(uri)
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def _start(home):
    ini = home / "auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{home / 'auth.db'}\nadmin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
           "MLFLOW_FLASK_SERVER_SECRET_KEY": "test-only",
           "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # fmt: skip
    command = [sys.executable, "-m", "mlflow", "server", "--app-name", APP_NAME,
               "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
               "--artifacts-destination", str(home / "artifacts"),
               "--host", "127.0.0.1", "--port", str(PORT), "--workers", "1"]  # fmt: skip
    log = (home / "server.log").open("w")
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT), log


def _wait(uri, process, home) -> None:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if HTTP.get(f"{uri}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"the server did not start:\n{(home / 'server.log').read_text()[-3000:]}")


def _setup(uri) -> dict[str, str]:
    """The configured users with their permissions; version 1 registered by alice, reviewable."""
    api = f"{uri}/api/2.0/mlflow"
    model = HTTP.post(f"{api}/registered-models/create", json={"name": MODEL}, auth=ADMIN)
    assert model.is_success, model.text
    os.environ.update(MLFLOW_TRACKING_USERNAME=ADMIN[0], MLFLOW_TRACKING_PASSWORD=ADMIN[1])
    try:
        passwords = apply_permission_plan(permission_plan(MODEL), uri, create_missing_users=True)
    finally:
        del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
    run = HTTP.post(f"{api}/runs/create", json={"experiment_id": "0"}, auth=ADMIN).json()
    run_id = run["run"]["info"]["run_id"]
    created = HTTP.post(
        f"{api}/model-versions/create",
        json={"name": MODEL, "source": f"runs:/{run_id}/model", "run_id": run_id},
        auth=("alice", passwords["alice"]),
    )
    assert created.is_success, created.text
    return passwords


@pytest.fixture
def as_user(server, monkeypatch, tmp_path):
    """``as_user(name)`` points this process's MLflow client at the server as ``name``."""
    uri, passwords = server
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()

    def login(user: str) -> tuple[str, str]:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", passwords[user])
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        return user, passwords[user]

    yield login
    mlflow.set_tracking_uri(previous[0])
    mlflow.set_registry_uri(previous[1])
