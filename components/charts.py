"""Every third-party Helm chart the platform installs: one pinned version each, and one way to
install it.

Why one module: the pins, their repositories and the install settings (timeout, atomicity) were
spread over the platforms and the monitoring component, and a chart's values only make sense
for the version they were written against. Bumping a chart means reading its upgrade notes,
changing its entry here and its values next to the code that sets them, and saying why in
``reason``; ``tests/infra/test_charts.py`` checks that every rendered release is one of these.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s


@dataclass(frozen=True)
class Chart:
    name: str
    version: str
    repo: str
    reason: str
    """Why this version: what its upgrade notes say for our values."""
    timeout_s: int = 600
    """How long ``helm install`` may take before the release fails.

    Helm's default is 300 s; on a fresh cluster a chart that pulls several images and waits for
    CRDs, admission webhooks and PVCs (kube-prometheus-stack, the operators) can need longer.
    """
    host_path_defaults: tuple[str, ...] = ()
    """Values whose chart default is a ``hostPath`` volume (read from the chart's values and
    templates): in a Pod Security ``baseline`` namespace each must be set to another type."""
    reads_since: tuple[tuple[str, str], ...] = ()
    """(value path, first chart version whose templates read it) for keys that moved."""


PROMETHEUS_COMMUNITY = "https://prometheus-community.github.io/helm-charts"

CHARTS: dict[str, Chart] = {
    "cnpg": Chart(
        "cloudnative-pg",
        "0.29.0",
        "https://cloudnative-pg.github.io/charts",
        reason=(
            "From 0.27.1: operator 1.30.0; crds.create, the only value set, is unchanged. The "
            "Postgres Cluster's Ready condition, which the stack waits on, is the same."
        ),
    ),
    "valkey": Chart(
        "valkey",
        "0.11.0",
        "https://valkey.io/valkey-helm/",
        reason=(
            "From 0.9.2: Valkey 9.1.1 (Redis-protocol compatible for Feast's client); "
            "auth.enabled/usersExistingSecret (key per user name)/aclUsers and "
            "dataStorage.enabled/requestedSize/className keep their meaning in its values."
        ),
    ),
    "seaweedfs": Chart(
        "seaweedfs",
        "4.44.0",
        "https://seaweedfs.github.io/seaweedfs/helm",
        reason=(
            "From 4.0.385: 4.0.408 made the bucket hook read s3.createBuckets (4.0.385 read "
            "only filer.s3.createBuckets, so no bucket was created) and run on upgrades too, "
            "skipping existing buckets; fullnameOverride keeps the resource names. Every "
            "store still defaults to hostPath, so the values set PVCs and emptyDir."
        ),
        host_path_defaults=(
            "master.data",
            "master.logs",
            "volume.dataDirs",
            "filer.data",
            "filer.logs",
            "s3.logs",
        ),
        reads_since=(("s3.createBuckets", "4.0.408"),),
    ),
    "kube-prometheus-stack": Chart(
        "kube-prometheus-stack",
        "88.5.3",
        PROMETHEUS_COMMUNITY,
        reason=(
            "From 77.10.0: Prometheus Operator 0.93.1. Each major from 78 to 88 upgrades the "
            "operator's CRDs, which `helm upgrade` does not: an existing release needs the "
            "chart's `crds.upgradeJob.enabled` or the CRDs applied first (UPGRADE.md); a fresh "
            "install is unaffected. 79 dropped the default Grafana password (we set ours), 85 "
            "made the Prometheus images distroless. nodeExporter.enabled and the "
            "prometheusSpec selector/retention/storageSpec keys are unchanged. Grafana is now "
            "the grafana-community chart 12.x; its admin.existingSecret and sidecar.dashboards "
            "keys were not re-read here."
        ),
        timeout_s=900,
    ),
    "pushgateway": Chart(
        "prometheus-pushgateway",
        "3.8.0",
        PROMETHEUS_COMMUNITY,
        reason=(
            "From 2.15.0: Pushgateway 1.11.3; 3.0.0 changed labels on the StatefulSet's claim "
            "template, which only matters with persistence (not used). serviceMonitor.enabled "
            "and .namespace are unchanged."
        ),
    ),
}


def release(
    resource_name: str,
    key: str,
    release_name: str,
    namespace: pulumi.Input[str],
    values: dict,
    opts: pulumi.ResourceOptions,
) -> k8s.helm.v3.Release:
    """``helm install`` of ``CHARTS[key]`` with its pinned version and timeout."""
    chart = CHARTS[key]
    return k8s.helm.v3.Release(
        resource_name,
        name=release_name,
        chart=chart.name,
        version=chart.version,
        repository_opts={"repo": chart.repo},
        namespace=namespace,
        values=values,
        timeout=chart.timeout_s,
        opts=opts,
    )
