"""One e2e session: the workloads, the backing stand-ins and Prometheus, as the loop sees them.

:class:`Session` is what :mod:`e2e.loop` drives. It delegates pods and Jobs to
:class:`e2e.kubelet.Cluster` and adds what people and tools outside the cluster use: the object
store and MLflow seen from the host (the upstream system and the reviewers' view), Prometheus'
HTTP API, and the traffic policy the serving pods read.
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

from contract.env import bucket as bucket_env
from contract.paths import POLICY_FILE
from contract.traffic import TrafficPolicy
from e2e.kubelet import Cluster, WorkloadError, environ


class Prometheus:
    """The stand-in Prometheus' HTTP API (queries, alerts, series names), from the host."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise WorkloadError(f"Prometheus {path}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self._get("/api/v1/query", query=expr)["result"]

    def series_names(self) -> set[str]:
        return set(self._get("/api/v1/label/__name__/values"))

    def firing(self) -> set[str]:
        alerts = self._get("/api/v1/alerts")["alerts"]
        return {a["labels"]["alertname"] for a in alerts if a.get("state") == "firing"}

    def targets_down(self) -> list[str]:
        active = self._get("/api/v1/targets")["activeTargets"]
        return [
            f"{t['labels'].get('job')} {t['scrapeUrl']}: {t.get('lastError')}"
            for t in active
            if t.get("health") == "down"
        ]

    def wait_alert(self, name: str, timeout_s: float) -> float:
        start = time.monotonic()
        while time.monotonic() - start < timeout_s:
            if name in self.firing():
                return time.monotonic() - start
            time.sleep(5)
        raise WorkloadError(
            f"alert {name} did not fire within {timeout_s:.0f} s (firing: {sorted(self.firing())})"
        )


class Session:
    """The loop's view of the platform (see :mod:`e2e.loop` for what it asks)."""

    def __init__(self, cluster: Cluster, backing: Any, prometheus: Prometheus) -> None:
        self.cluster = cluster
        self.backing = backing
        self.prometheus = prometheus

    # pods and jobs
    def run_job(self, name: str, timeout_s: float):
        return self.cluster.run_job(name, timeout_s)

    def run_cronjob(self, name: str, timeout_s: float):
        return self.cluster.run_cronjob(name, timeout_s)

    def wait_ready(self, name: str, timeout_s: float) -> float:
        return self.cluster.wait_ready(name, timeout_s)

    def started_at(self, name: str) -> list[str]:
        return self.cluster.started_at(name)

    def stop(self, name: str, timeout_s: float) -> None:
        self.cluster.stop(name, timeout_s)

    def oneoff(self, like: str, command: list[str], timeout_s: float) -> str:
        return self.cluster.oneoff(like, command, timeout_s)

    def client(self, url: str, bodies: list[dict], deadline_s: float, concurrency: int) -> dict:
        return self.cluster.client(url, bodies, deadline_s, concurrency)

    def client_background(self, tag: str, url: str, bodies: list[dict], **options) -> str:
        return self.cluster.client_background(tag, url, bodies, **options)

    # the host's view of the backing services
    def bucket(self, role: str) -> str:
        return self.backing.buckets[role]

    @contextlib.contextmanager
    def host_s3(self) -> Iterator[None]:
        """boto3 in this process talks to the stand-in object store with a pod's credentials."""
        from ml import objectstore

        access, secret = self.backing.s3_credentials
        values = {
            "AWS_ENDPOINT_URL_S3": self.backing.s3_endpoint,
            "AWS_ACCESS_KEY_ID": access,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            **{bucket_env(role): name for role, name in self.backing.buckets.items()},
        }
        objectstore._client.cache_clear()
        with environ(values):
            yield
        objectstore._client.cache_clear()

    @contextlib.contextmanager
    def host_mlflow(self) -> Iterator[None]:
        """The MLflow client in this process talks to the mlflow-server pod as the admin."""
        import mlflow

        env = self.cluster.env_of("pipeline-train")
        uri = f"http://{self.cluster.ip('mlflow-server')}:5000"
        values = {
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_TRACKING_USERNAME": env["MLFLOW_TRACKING_USERNAME"],
            "MLFLOW_TRACKING_PASSWORD": env["MLFLOW_TRACKING_PASSWORD"],
        }
        with environ(values):
            mlflow.set_tracking_uri(uri)
            mlflow.set_registry_uri(uri)
            yield

    # serving's configuration and metrics
    def policy(self) -> TrafficPolicy:
        return TrafficPolicy.model_validate_json(
            self.cluster.configmaps["serving-traffic-policy"][POLICY_FILE]
        )

    def policy_share(self, variant: str) -> float:
        return self.policy().effective_weights().get(variant, 0.0)

    def metric_sum(self, name: str) -> float:
        result = self.prometheus.query(f"sum({name})")
        return float(result[0]["value"][1]) if result else 0.0
