"""Run Feast's HTTP feature server (``feast serve``) as a real local process.

Tuning for the online latency target (see docs/features.md): one worker per core at most (the
server is CPU-bound on a 2-core box; more workers only contend), keep-alive so clients reuse
connections, no access log (it costs ~0.1 ms a request), and a long registry TTL so requests
never wait for a registry refresh.

Workers are never recycled (``--max-requests 0``). Feast's default restarts a worker after
1000-1050 requests; the exiting worker closes every keep-alive connection, and a client that
is reusing one at that moment gets ``Server disconnected without sending a response`` or
``Connection reset by peer`` (the feature bench's intermittent failures: its HTTP path sends
~1500 requests per server). The worker holds no per-request state that grows, so recycling
bought nothing here. Clients still retry such a drop once (:mod:`ml.features.client`).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from ml.errors import ServiceUnavailable


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_command(repo_dir: Path, port: int, workers: int = 1, registry_ttl_s: int = 600) -> list:
    """The ``feast serve`` command line for ``repo_dir``."""
    feast = shutil.which("feast") or str(Path(sys.executable).parent / "feast")
    return [
        feast,
        "-c",
        str(repo_dir),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--keep-alive-timeout",
        "60",  # longer than clients keep idle connections (client.KEEPALIVE_EXPIRY_S)
        "--max-requests",
        "0",  # no worker recycling: it drops open connections (see the module docstring)
        "--registry_ttl_sec",
        str(registry_ttl_s),
        "--no-access-log",
    ]


@contextmanager
def feature_server(
    repo_dir: Path, workers: int = 1, env: dict[str, str] | None = None, timeout_s: float = 60
) -> Iterator[str]:
    """Start ``feast serve`` for ``repo_dir``; yield its base URL; stop it on exit.

    Raises:
        ServiceUnavailable: the server did not become healthy within ``timeout_s``.
    """
    port = free_port()
    log = repo_dir / f"feature_server_{port}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            serve_command(repo_dir, port, workers),
            env={**os.environ, **(env or {})},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, process, timeout_s, log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(url: str, process: subprocess.Popen, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-400:] if log.exists() else ""
    raise ServiceUnavailable(
        f"feast feature server did not become healthy at {url}: {tail.strip()[-200:]}",
        f"see {log}",
    )
