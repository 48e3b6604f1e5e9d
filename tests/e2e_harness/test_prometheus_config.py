"""ServiceMonitor -> scrape config: selector, named port, path and basicAuth as rendered."""

from __future__ import annotations

import pytest

from e2e.manifests import ManifestError
from e2e.prometheus import scrape_configs


def _objects(monitor_port: str = "http", svc_label: str = "mlflow") -> dict:
    labels = {"app.kubernetes.io/name": "mlflow", "app.kubernetes.io/component": "server"}
    monitor = {
        "metadata": {"namespace": "mlops", "name": "mon"},
        "spec": {
            "namespaceSelector": {"matchNames": ["mlops"]},
            "selector": {"matchLabels": {"app.kubernetes.io/name": svc_label}},
            "endpoints": [
                {
                    "port": monitor_port,
                    "path": "/metrics",
                    "basicAuth": {
                        "username": {"name": "creds", "key": "username"},
                        "password": {"name": "creds", "key": "password"},
                    },
                }
            ],
        },
    }
    service = {
        "metadata": {"namespace": "mlops", "name": "mlflow-server", "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 5000}]},
    }
    deployment = {
        "spec": {
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"ports": [{"name": "http", "containerPort": 5000}]}]},
            }
        }
    }
    return {
        ("mlops", "ServiceMonitor", "mon"): monitor,
        ("mlops", "Service", "mlflow-server"): service,
        ("mlops", "Deployment", "mlflow-server"): deployment,
    }


SECRETS = {"creds": {"username": "u", "password": "p"}}
IPS = {"mlflow-server": ["10.89.77.5"]}


@pytest.mark.parametrize(
    ("port", "label", "targets"),
    [("http", "mlflow", ["10.89.77.5:5000"]), ("metrics", "mlflow", []), ("http", "feast", [])],
)
def test_targets_follow_selector_and_named_port(port: str, label: str, targets: list) -> None:
    jobs = scrape_configs(_objects(port, label), IPS, SECRETS, "pushgateway:9091")
    monitor_job, push_job = jobs
    assert monitor_job["static_configs"][0]["targets"] == targets
    assert monitor_job["basic_auth"] == {"username": "u", "password": "p"}
    assert push_job["honor_labels"] is True


def test_missing_basic_auth_secret_is_an_error() -> None:
    with pytest.raises(ManifestError, match="creds"):
        scrape_configs(_objects(), IPS, {}, "pushgateway:9091")
