"""The MLflow tracking server of the embedded mode: a real ``mlflow server`` process.

It runs on SQLite and a local artifact folder, bound to loopback. :class:`MlflowServer` starts
it without waiting, so a caller can overlap its start-up (mlflow's CLI imports for several
seconds) with other work and wait only when it first needs the server. Elsewhere the tracking
URI comes from settings and no server is started.
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

from contract.objectstore import LOCAL_ARTIFACTS_SCHEME
from ml.errors import ServiceUnavailable

STARTUP_TIMEOUT_S = 180.0


def server_command(home: Path, port: int, artifacts: str | None = None) -> list[str]:
    """``mlflow server`` on ``home``'s SQLite store and artifact folder, on loopback.

    Artifacts go through the server's proxy into a deduplicated store
    (:mod:`ml.experiments.dedup_store`): each distinct file is kept once. ``artifacts`` names
    another destination (the artifacts benchmark compares with MLflow's plain folder).
    """
    return [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", artifacts or artifact_store_uri(home),
        "--serve-artifacts",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip


def artifact_store_uri(home: Path) -> str:
    """The embedded server's artifact destination (also what ``mlops experiments gc`` sweeps)."""
    return f"{LOCAL_ARTIFACTS_SCHEME}://{(home / 'artifacts').resolve()}"


class MlflowServer:
    """One ``mlflow server`` process with its state under ``home``."""

    def __init__(self, home: Path, port: int, artifacts: str | None = None) -> None:
        self.home = home
        self.artifacts = artifacts
        self.uri = f"http://127.0.0.1:{port}"
        self.port = port
        self.log_path = home / "server.log"
        self._process: subprocess.Popen | None = None

    def start(self) -> MlflowServer:
        """Launch the process and return at once (see :meth:`wait_ready`)."""
        self.home.mkdir(parents=True, exist_ok=True)
        if _healthy(self.uri):
            raise ServiceUnavailable(
                f"port {self.port} is already serving something",
                "stop the other process or set MLOPS_MLFLOW_PORT to a free port",
            )
        command = server_command(self.home, self.port, self.artifacts)
        # The job executor (for GenAI evaluation jobs) spawns worker processes that a
        # tracking-only server never uses; they cost seconds at start and memory after.
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with self.log_path.open("w") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return self

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> str:
        """Block until the server answers ``/health``; return its URI."""
        assert self._process is not None, "start() first"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                lines = self.log_path.read_text().strip().splitlines() or ["(no output)"]
                raise ServiceUnavailable(
                    f"mlflow server exited at start: {lines[-1]}", f"see {self.log_path}"
                )
            if _healthy(self.uri):
                return self.uri
            time.sleep(0.3)
        self.stop()
        raise ServiceUnavailable(
            f"mlflow server did not answer within {timeout_s:.0f}s", f"see {self.log_path}"
        )

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


@contextmanager
def mlflow_server(home: Path, port: int) -> Iterator[str]:
    """Run ``mlflow server`` with its state under ``home``; yield its URI; stop it after."""
    server = MlflowServer(home, port).start()
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def _healthy(uri: str) -> bool:
    try:
        return httpx.get(f"{uri}/health", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def require_tracking_server(uri: str) -> None:
    """Fail with one clear line if the tracking server at ``uri`` is not reachable."""
    if uri.startswith("http") and not _healthy(uri):
        raise ServiceUnavailable(
            f"no MLflow tracking server answers at {uri}",
            "start it (the demo does) or set MLOPS_MLFLOW_TRACKING_URI to a running server",
        )
