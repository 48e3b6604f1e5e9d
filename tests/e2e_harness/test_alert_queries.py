"""The e2e's alert checks against a real Prometheus: an alert that fired and resolved counts.

The loop reaches its alert step minutes after the error burst ended; asking only which alerts
fire *now* failed there. This starts Debian's Prometheus on loopback with two rules evaluated
every second, one firing throughout and one that fires for its first seconds only.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

import pytest
import yaml

from e2e.session import Prometheus
from tests.conftest import require_service

BINARY = "/usr/bin/prometheus"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def prometheus(tmp_path):
    if shutil.which(BINARY) is None:
        require_service("prometheus", f"{BINARY} is not installed")
    until = time.time() + 8  # Prometheus starts in about a second
    rules = {"groups": [{"name": "t", "interval": "1s", "rules": [
        {"alert": "Always", "expr": "vector(1)"},
        {"alert": "Briefly", "expr": f"vector(time()) < {until:.0f}"},
    ]}]}  # fmt: skip
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    config = {"global": {"evaluation_interval": "1s"}, "rule_files": [str(tmp_path / "rules.yml")]}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    process = subprocess.Popen(
        [BINARY, f"--config.file={tmp_path / 'prometheus.yml'}",
         f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield Prometheus(f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _when(check, timeout_s: float = 60):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if value := check():
                return value
        except OSError:  # not listening yet
            pass
        time.sleep(0.5)
    raise AssertionError(f"not reached within {timeout_s} s")


def test_an_alert_that_fired_and_resolved_still_counts(prometheus):
    _when(lambda: "Briefly" in prometheus.fired() and "Briefly" not in prometheus.firing())
    assert {"Always", "Briefly"} <= prometheus.fired()
    first = prometheus.wait_alert("Briefly", timeout_s=1)
    assert time.time() - 120 < first < time.time()


def test_an_alert_that_never_fired_is_reported_with_what_did(prometheus):
    _when(lambda: "Always" in prometheus.fired())
    with pytest.raises(Exception, match=r"alert Never did not fire within 0 s.*Always"):
        prometheus.wait_alert("Never", timeout_s=0)
