"""Small constructors for the Kubernetes objects every component repeats.

They fix the conventions once: explicit names (Services are found by DNS name), the recommended
labels, the platform's namespace, and Jobs that clean up after themselves. The caller passes
``opts`` with ``parent=`` set, so each object stays a child of its component.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s

from components import security
from components.types import Cluster, ScrapeTarget, service_account_name

# Kept finished Jobs for debugging, then garbage-collected by the TTL controller.
JOB_TTL_SECONDS = 24 * 3600


def meta(name: str, cluster: Cluster, app: str, component: str, **extra: object) -> dict:
    return {
        "name": name,
        "namespace": cluster.namespace_ref,
        "labels": security.labels(app, component),
        **extra,
    }


def service_account(
    name: str, cluster: Cluster, workload: str, opts: pulumi.ResourceOptions
) -> k8s.core.v1.ServiceAccount:
    """The workload's ServiceAccount, annotated for cloud identity (IRSA) where there is one."""
    return k8s.core.v1.ServiceAccount(
        name,
        metadata=meta(
            service_account_name(workload),
            cluster,
            workload,
            "identity",
            annotations=dict(cluster.service_account_annotations.get(workload, {})),
        ),
        automount_service_account_token=False,
        opts=opts,
    )


def secret(
    name: str,
    cluster: Cluster,
    app: str,
    data: Mapping[str, pulumi.Input[str]],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    """An Opaque Secret whose values are marked secret in the Pulumi state too."""
    return k8s.core.v1.Secret(
        name,
        metadata=meta(name, cluster, app, "secret"),
        type="Opaque",
        string_data={k: pulumi.Output.secret(v) for k, v in data.items()},
        opts=opts,
    )


def deployment(
    name: str,
    cluster: Cluster,
    app: str,
    component: str,
    pod: dict,
    opts: pulumi.ResourceOptions,
    replicas: int | None = 1,
    extra_labels: Mapping[str, str] | None = None,
) -> k8s.apps.v1.Deployment:
    """A rolling-update Deployment; ``replicas=None`` leaves the count to an autoscaler."""
    pod_labels = {**security.labels(app, component), **(extra_labels or {})}
    return k8s.apps.v1.Deployment(
        name,
        metadata=meta(name, cluster, app, component),
        spec={
            **({"replicas": replicas} if replicas is not None else {}),
            "selector": {"matchLabels": security.selector(app, component)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod},
        },
        opts=opts,
    )


def service(
    name: str,
    cluster: Cluster,
    app: str,
    component: str,
    ports: Sequence[tuple[str, int]],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Service:
    """A ClusterIP Service; ports are (name, port) with targetPort the named container port."""
    return k8s.core.v1.Service(
        name,
        metadata=meta(name, cluster, app, component),
        spec={
            "type": "ClusterIP",
            "selector": security.selector(app, component),
            "ports": [
                {"name": n, "port": p, "targetPort": n, "protocol": "TCP"} for n, p in ports
            ],
        },
        opts=opts,
    )


def job_spec(
    pod: dict, app: str, component: str, backoff_limit: int = 2, deadline_seconds: int = 6 * 3600
) -> dict:
    """A Job spec that retries twice, has a deadline and is garbage-collected after a day."""
    return {
        "backoffLimit": backoff_limit,
        "activeDeadlineSeconds": deadline_seconds,
        "ttlSecondsAfterFinished": JOB_TTL_SECONDS,
        "template": {
            "metadata": {"labels": security.labels(app, component)},
            "spec": {**pod, "restartPolicy": "Never"},
        },
    }


def job(
    name: str,
    cluster: Cluster,
    app: str,
    component: str,
    pod: dict,
    opts: pulumi.ResourceOptions,
) -> k8s.batch.v1.Job:
    return k8s.batch.v1.Job(
        name,
        metadata=meta(name, cluster, app, component),
        spec=job_spec(pod, app, component),
        opts=opts,
    )


def cron_job(
    name: str,
    cluster: Cluster,
    app: str,
    component: str,
    schedule: str,
    pod: dict,
    opts: pulumi.ResourceOptions,
) -> k8s.batch.v1.CronJob:
    """A CronJob that never overlaps itself and keeps a short history."""
    return k8s.batch.v1.CronJob(
        name,
        metadata=meta(name, cluster, app, component),
        spec={
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "metadata": {"labels": security.labels(app, component)},
                "spec": job_spec(pod, app, component),
            },
        },
        opts=opts,
    )


def service_monitor(
    name: str, cluster: Cluster, target: ScrapeTarget, opts: pulumi.ResourceOptions
) -> k8s.apiextensions.CustomResource:
    """A ServiceMonitor for one scrape target in the application namespace."""
    endpoint: dict = {"port": target.port, "path": target.path, "interval": "30s"}
    if target.basic_auth is not None:
        user, password = target.basic_auth
        endpoint["basicAuth"] = {
            "username": {"name": user.name, "key": user.key},
            "password": {"name": password.name, "key": password.key},
        }
    return k8s.apiextensions.CustomResource(
        name,
        api_version="monitoring.coreos.com/v1",
        kind="ServiceMonitor",
        metadata=meta(name, cluster, target.app, "metrics"),
        spec={
            "selector": {"matchLabels": {"app.kubernetes.io/name": target.app}},
            "namespaceSelector": {"matchNames": [cluster.namespace]},
            "endpoints": [endpoint],
        },
        opts=opts,
    )
