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


def test_mlflow_gets_a_generated_flask_secret_key(rendered) -> None:
    """MLflow's basic-auth app refuses to start without MLFLOW_FLASK_SERVER_SECRET_KEY."""
    (server,) = [
        d for d in rendered.kinds("Deployment") if d["metadata"]["name"] == "mlflow-server"
    ]
    env = {e["name"]: e for e in server["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "secretKeyRef" in env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["valueFrom"]
