"""Prometheus, Alertmanager and Grafana (kube-prometheus-stack), the platform's scrape targets,
alert rules and dashboards, a Pushgateway for batch jobs, and the drift-monitor CronJob."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import charts, kube, security
from components.types import Backends, Cluster, ScrapeTarget, Services
from contract.commands import DRIFT

APP = "monitoring"
PUSHGATEWAY_PORT = 9091


def pushgateway_url(namespace: str = "monitoring") -> str:
    """Where batch jobs push their metrics (the chart's Service, named by fullnameOverride)."""
    return f"http://pushgateway.{namespace}.svc.cluster.local:{PUSHGATEWAY_PORT}"


@dataclass(frozen=True)
class MonitoringArgs:
    cluster: Cluster
    backends: Backends
    services: Services
    image: pulumi.Input[str]
    scrape_targets: Sequence[ScrapeTarget]
    drift_schedule: str = "0 * * * *"
    retention_days: int = 7


class Monitoring(pulumi.ComponentResource):
    """Observability of the platform; Grafana's admin password is generated and kept in a Secret.

    Custom resources (ServiceMonitor, PrometheusRule) depend on the chart release, which
    installs their CRDs.
    """

    grafana_admin_secret: pulumi.Output[str]

    def __init__(
        self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:Monitoring", name, None, opts)
        from components.alerting import rule_groups
        from components.dashboards import dashboards

        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster
        ns_name = cluster.monitoring_namespace
        # node-exporter needs host access, which no namespace of this platform grants; node
        # metrics come from the cluster's own tooling (kubelet/cAdvisor are still scraped).
        namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": ns_name, "labels": security.namespace_labels("baseline")},
            opts=child,
        )
        ns = namespace.metadata["name"]
        password = random.RandomPassword(
            f"{name}-grafana-password", length=32, special=False, opts=child
        )
        grafana_secret = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata={
                "name": "grafana-admin",
                "namespace": ns,
                "labels": security.labels(APP, "grafana"),
            },
            type="Opaque",
            string_data={"admin-user": "admin", "admin-password": password.result},
            opts=child,
        )
        stack = charts.release(
            f"{name}-kube-prometheus-stack",
            "kube-prometheus-stack",
            "kps",
            ns,
            _stack_values(grafana_secret.metadata["name"], args.retention_days, cluster),
            pulumi.ResourceOptions(parent=self, depends_on=[grafana_secret]),
        )
        charts.release(
            f"{name}-pushgateway",
            "pushgateway",
            "pushgateway",
            ns,
            {
                "fullnameOverride": "pushgateway",
                "serviceMonitor": {"enabled": True, "namespace": ns_name},
            },
            pulumi.ResourceOptions(parent=self, depends_on=[stack]),
        )

        after_crds = pulumi.ResourceOptions(parent=self, depends_on=[stack])
        for target in args.scrape_targets:
            kube.service_monitor(f"{name}-{target.app}", cluster, target, after_crds)
        k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=kube.meta(f"{name}-rules", cluster, APP, "alerting"),
            spec={"groups": rule_groups(namespace=cluster.namespace)},
            opts=after_crds,
        )
        for file_name, model in sorted(dashboards().items()):
            stem = file_name.removesuffix(".json").replace("_", "-")
            k8s.core.v1.ConfigMap(
                f"{name}-dashboard-{stem}",
                metadata={
                    "name": f"dashboard-{stem}",
                    "namespace": ns,
                    "labels": {**security.labels(APP, "dashboard"), "grafana_dashboard": "1"},
                },
                data={file_name: json.dumps(model, sort_keys=True)},
                opts=child,
            )
        self._drift_monitor(name, args, child)
        self._network_policies(name, ns, child)

        self.grafana_admin_secret = grafana_secret.metadata["name"]
        self.register_outputs(
            {
                "grafana_admin_secret": self.grafana_admin_secret,
                "pushgateway_url": pushgateway_url(ns_name),
            }
        )

    @staticmethod
    def _drift_monitor(name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions) -> None:
        """The drift CronJob: windows and verdicts live in the reports bucket.

        It never calls the Kubernetes API: on drift it writes a retraining request to the
        bucket, which the retrain CronJob consumes. So no API token, Role or Job template.
        """
        cluster, services = args.cluster, args.services
        account = kube.service_account(f"{name}-sa", cluster, "monitor", opts)
        command, *command_args = DRIFT
        wiring = services.wiring(args.backends.object_store, "monitor")
        container = security.container(
            "drift",
            args.image,
            command=[command],
            args=command_args,
            env=wiring.env,
            mounts=wiring.mounts,
            resources=security.BATCH,
        )
        pod = security.pod_spec(
            [container], service_account=account.metadata["name"], volumes=wiring.volumes
        )
        kube.cron_job(f"{name}-drift", cluster, APP, "drift", args.drift_schedule, pod, opts)

    @staticmethod
    def _network_policies(name: str, ns: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
        """Ingress into the monitoring namespace: itself, batch pushes, the operator webhook.

        Egress stays open: Prometheus scrapes every namespace and the API server.
        """
        security.network_policy(f"{name}-default-deny-ingress", ns, {}, ingress=[], opts=opts)
        security.network_policy(
            f"{name}-allow-ingress",
            ns,
            {},
            ingress=[
                security.allow_from([security.pod_peer()]),
                # the API server calls the operator's admission webhook from outside the cluster
                security.allow_from(
                    [{"ipBlock": {"cidr": "0.0.0.0/0"}}], security.tcp_ports(10250)
                ),
            ],
            opts=opts,
        )
        security.network_policy(
            f"{name}-allow-pushgateway",
            ns,
            {"app.kubernetes.io/name": "prometheus-pushgateway"},
            ingress=[
                security.allow_from(
                    [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"app.kubernetes.io/part-of": "mlops"}
                            }
                        }
                    ],
                    security.tcp_ports(PUSHGATEWAY_PORT),
                )
            ],
            opts=opts,
        )


def _stack_values(
    grafana_secret: pulumi.Input[str], retention_days: int, cluster: Cluster
) -> dict:
    """kube-prometheus-stack values: select every ServiceMonitor/rule, Grafana sidecar on."""
    prometheus: dict = {
        "retention": f"{retention_days}d",
        # pick up the platform's ServiceMonitors and PrometheusRules without chart labels
        "serviceMonitorSelectorNilUsesHelmValues": False,
        "podMonitorSelectorNilUsesHelmValues": False,
        "ruleSelectorNilUsesHelmValues": False,
    }
    if cluster.storage_class:
        prometheus["storageSpec"] = {
            "volumeClaimTemplate": {
                "spec": {
                    "storageClassName": cluster.storage_class,
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": "20Gi"}},
                }
            }
        }
    return {
        "fullnameOverride": "kps",
        "nodeExporter": {"enabled": False},
        "prometheus": {"prometheusSpec": prometheus},
        "grafana": {
            "admin": {
                "existingSecret": grafana_secret,
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            },
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": "grafana_dashboard",
                    "labelValue": "1",
                    "searchNamespace": "ALL",
                }
            },
        },
    }
