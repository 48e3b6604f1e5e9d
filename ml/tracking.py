"""The MLflow tracking server of the embedded mode: a real ``mlflow server`` process.

It runs on SQLite and a local artifact folder, bound to loopback, and is started and stopped
by the demo (or any caller) through :func:`mlflow_server`. Elsewhere the tracking URI comes
from settings and no server is started.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ml.errors import ServiceUnavailable

STARTUP_TIMEOUT_S = 90.0


@contextmanager
def mlflow_server(home: Path, port: int) -> Iterator[str]:
    """Run ``mlflow server`` with its state under ``home``; yield its URI; stop it after."""
    home.mkdir(parents=True, exist_ok=True)
    uri = f"http://127.0.0.1:{port}"
    if _healthy(uri):
        raise ServiceUnavailable(
            f"port {port} is already serving something",
            "stop the other process or set MLOPS_MLFLOW_PORT to a free port",
        )
    log = (home / "server.log").open("w")
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", str(home / "artifacts"),
        "--serve-artifacts",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    # The job executor (for GenAI evaluation jobs) spawns extra worker processes that a
    # tracking-only server never uses; they cost seconds at start and memory after.
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_until_healthy(uri, process, home / "server.log")
        yield uri
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _healthy(uri: str) -> bool:
    try:
        return httpx.get(f"{uri}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_until_healthy(uri: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text()[-400:].strip().splitlines()[-1:] or ["(no output)"]
            raise ServiceUnavailable(
                f"mlflow server exited at start: {tail[0]}", f"see {log} for the full log"
            )
        if _healthy(uri):
            return
        time.sleep(0.3)
    process.kill()
    raise ServiceUnavailable(
        f"mlflow server did not answer within {STARTUP_TIMEOUT_S:.0f}s", f"see {log}"
    )


def require_tracking_server(uri: str) -> None:
    """Fail with one clear line if the tracking server at ``uri`` is not reachable."""
    if uri.startswith("http") and not _healthy(uri):
        raise ServiceUnavailable(
            f"no MLflow tracking server answers at {uri}",
            "start it (the demo does) or set MLOPS_MLFLOW_TRACKING_URI to a running server",
        )
