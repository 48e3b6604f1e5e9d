"""Start and stop the BentoML HTTP server as a real local process (embedded mode, demo, bench).

The server runs in its own process group, on loopback, with the environment that tells each
worker where everything is (build folder, MLflow, policy file, prediction log) and one
BLAS/OpenMP thread per worker. :func:`start_server` waits until ``/readyz`` answers and always
stops the whole group on exit.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from ml.errors import ServiceUnavailable
from ml.serve.runtime import SINGLE_THREAD_ENV
from ml.serve.traffic import TrafficPolicy, save_policy
from ml.settings import Settings

SERVICE = "ml.serve.service:CreditRiskService"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(
    settings: Settings,
    policy_file: Path | None,
    log_path: Path,
    workers: int | None = None,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The environment of the server process (inherits this one, overrides what matters)."""
    import mlflow

    env = {**os.environ, **SINGLE_THREAD_ENV}
    env.update(
        MLOPS_BUILD_DIR=str(settings.build),
        MLOPS_MODEL_NAME=settings.model_name,
        MLOPS_FEATURE_SERVICE=settings.feature_service,
        MLOPS_PREDICTION_LOG=str(log_path),
        MLFLOW_TRACKING_URI=settings.mlflow_tracking_uri or mlflow.get_tracking_uri(),
        BENTOML_DO_NOT_TRACK="true",
        PYTHONPATH=os.pathsep.join(filter(None, [str(settings.root), env.get("PYTHONPATH")])),
    )
    if policy_file is not None:
        env["MLOPS_TRAFFIC_POLICY"] = str(policy_file)
    if workers is not None:
        env["MLOPS_SERVING_WORKERS"] = str(workers)
    env.update(extra or {})
    return env


@contextlib.contextmanager
def start_server(
    settings: Settings,
    policy: TrafficPolicy | None = None,
    *,
    port: int | None = None,
    workers: int | None = None,
    log_path: Path | None = None,
    env: dict[str, str] | None = None,
    timeout_s: float = 120.0,
    wait_for: str = "/readyz",
) -> Iterator[str]:
    """Run the scoring server as a local process; yield its base URL; stop it on exit.

    Args:
        settings: Build folder (feature repo, outputs), model name, feature service. MLflow is
            ``settings.mlflow_tracking_uri`` or else this process's current tracking URI.
        policy: Traffic policy; written to ``<build>/serving/traffic_policy.json`` and passed
            as ``MLOPS_TRAFFIC_POLICY`` (edit that file to change traffic while it runs).
            None uses ``MLOPS_TRAFFIC_POLICY`` or the default ``ml/serve/traffic.yaml``.
        port: TCP port on 127.0.0.1 (default: ``settings.serving_port`` if free, else any).
        workers: Worker processes (default: ``MLOPS_SERVING_WORKERS`` or 2).
        log_path: Prediction log (default: ``<build>/serving/predictions.jsonl``).
        env: Extra environment variables for the server (e.g. ``MLOPS_REQUIRE_APPROVAL``).
        timeout_s: How long to wait for readiness.
        wait_for: The probe that must answer 200 before this yields (``/livez`` to start a
            server that has no champion yet and is expected to stay not ready).

    Yields:
        The base URL, e.g. ``http://127.0.0.1:3055``.

    Raises:
        ServiceUnavailable: The server exited or did not become ready in time.
    """
    serving_dir = settings.build / "serving"
    serving_dir.mkdir(parents=True, exist_ok=True)
    policy_file = None
    if policy is not None:
        policy_file = serving_dir / "traffic_policy.json"
        save_policy(policy, policy_file)
    log_path = log_path or settings.prediction_log_path
    port = port or (settings.serving_port if _port_free(settings.serving_port) else free_port())
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    server_log = serving_dir / f"server-{port}.log"
    with server_log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=settings.root,
            env=server_env(settings, policy_file, log_path, workers, env),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop workers with it
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process, server_log, timeout_s, wait_for)
        yield url
    finally:
        stop_process_group(process)


def wait_ready(
    url: str, process: subprocess.Popen, log: Path, timeout_s: float, probe: str = "/readyz"
) -> None:
    """Poll ``probe`` until 200; fail with the log's last line if the process dies."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailable(
                f"the scoring server exited ({process.returncode}): {_last_error(log)}",
                f"see {log}",
            )
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}{probe}", timeout=2).status_code == 200:
                return
        time.sleep(0.3)
    raise ServiceUnavailable(
        f"the scoring server at {url} was not ready in {timeout_s}s", f"see {log}"
    )


def stop_process_group(process: subprocess.Popen, grace_s: float = 15.0) -> None:
    """SIGTERM the process's group (workers flush their logs), SIGKILL after ``grace_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _last_error(log: Path) -> str:
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    return (errors or lines or ["no output"])[-1].strip()[:300]
