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

LOOKBACK = "2h"  # longer than any e2e run
RESOLUTION = "5s"  # the stand-in's rule evaluation interval (e2e/__main__.py)
_FIRING = 'ALERTS{alertstate="firing"}'


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

    def fired(self, lookback: str = LOOKBACK) -> set[str]:
        """Alerts that fired at any time in ``lookback`` (firing now or since resolved)."""
        result = self.query(f"count by (alertname) (max_over_time({_FIRING}[{lookback}]))")
        return {r["metric"]["alertname"] for r in result}

    def first_fired(self, name: str, lookback: str = LOOKBACK) -> float | None:
        """Unix time of the first evaluation at which alert ``name`` was firing, if any."""
        series = f'ALERTS{{alertstate="firing",alertname="{name}"}}'
        result = self.query(f"min_over_time(timestamp({series})[{lookback}:{RESOLUTION}])")
        return min((float(r["value"][1]) for r in result), default=None)

    def wait_alert(self, name: str, timeout_s: float) -> float:
        """Unix time alert ``name`` first fired; waits up to ``timeout_s`` for it to fire.

        An alert that fired and resolved before the loop looked still counts: the error burst
        ends minutes before the loop reaches its alert step.
        """
        deadline = time.monotonic() + timeout_s
        while (fired_at := self.first_fired(name)) is None:
            if time.monotonic() > deadline:
                raise WorkloadError(
                    f"alert {name} did not fire within {timeout_s:.0f} s "
                    f"(fired so far: {sorted(self.fired())})"
                )
            time.sleep(5)
        return fired_at


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

    def oneoff(self, like: str, command: list[str], timeout_s: float, secret_volumes=None) -> str:
        return self.cluster.oneoff(like, command, timeout_s, secret_volumes)

    def person_mlflow_secret(self, user: str, model: str) -> str:
        """The Secret holding ``user``'s own MLflow credentials file (as ``mlflow-credentials``).

        The admin creates the user on first use with a generated password and the permission
        ``governance.yaml``'s roles give them on ``model``, as an operator would for a person.
        """
        name = f"mlflow-credentials-{user}"
        if name not in self.cluster.secrets:
            import mlflow

            from components.types import mlflow_credentials_file
            from contract import paths
            from ml.governance.permissions import apply_permission_plan, permission_plan

            with self.host_mlflow():
                plan = [grant for grant in permission_plan(model) if grant.user == user]
                uri = mlflow.get_tracking_uri()
                created = apply_permission_plan(plan, uri, create_missing_users=True)
            if user not in created:
                raise RuntimeError(f"MLflow user {user!r} existed before the e2e created it")
            file = mlflow_credentials_file(user, created[user])
            self.cluster.secrets[name] = {paths.CREDENTIALS_FILE: file}
        return name

    def client(self, url: str, bodies: list[dict], deadline_s: float, concurrency: int) -> dict:
        return self.cluster.client(url, bodies, deadline_s, concurrency)

    def client_background(self, tag: str, url: str, bodies: list[dict], **options) -> str:
        return self.cluster.client_background(tag, url, bodies, **options)

    def client_soak(self, url: str, bodies: list[dict], seconds: float, **options) -> dict:
        return self.cluster.client_soak(url, bodies, seconds, **options)

    def disk_usage(self, deployment: str, volume: str = "tmp") -> int:
        return self.cluster.disk_usage(deployment, volume)

    def empty_dir_limit(self, deployment: str, volume: str = "tmp") -> str | None:
        """The rendered ``sizeLimit`` of a Deployment's emptyDir volume."""
        from e2e.manifests import pod_template

        spec = pod_template(self.cluster.get("Deployment", deployment))["spec"]
        for v in spec.get("volumes") or []:
            if v["name"] == volume and "emptyDir" in v:
                return (v["emptyDir"] or {}).get("sizeLimit")
        return None

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

        # pods read the same Secret as ~/.mlflow/credentials; this process takes its two keys
        creds = self.cluster.secrets["mlflow-credentials"]
        uri = f"http://{self.cluster.ip('mlflow-server')}:5000"
        values = {
            "MLFLOW_TRACKING_URI": uri,
            "MLFLOW_TRACKING_USERNAME": creds["username"],
            "MLFLOW_TRACKING_PASSWORD": creds["password"],
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
