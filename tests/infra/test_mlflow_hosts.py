"""MLflow's Host check must admit what Prometheus sends when it scrapes a pod by IP."""

from __future__ import annotations

import pytest
from mlflow.server.security_utils import is_allowed_host_header

from components.experiment_tracking import PORT, _allowed_hosts


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        (f"10.244.1.7:{PORT}", True),  # kind pod IP, as a ServiceMonitor scrape sends it
        (f"172.20.3.4:{PORT}", True),
        (f"mlflow-server.mlops.svc.cluster.local:{PORT}", True),
        ("evil.example.com", False),
        (f"8.8.8.8:{PORT}", False),
    ],
)
def test_host_header_check(host: str, allowed: bool) -> None:
    hosts = _allowed_hosts("mlflow-server", "mlops", None)
    assert is_allowed_host_header(hosts, host) is allowed
