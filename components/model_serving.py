"""BentoML model serving: one Deployment per variant, the traffic policy as configuration."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import kube, security
from components.types import ENV_MLFLOW_URI, Cluster, ScrapeTarget, SecretRef

APP = "model-serving"
PORT = 3000
POLICY_PATH = "/etc/mlops/traffic-policy.json"


@dataclass(frozen=True)
class Variant:
    """A served model variant; its name is also the MLflow registry alias it serves."""

    name: str
    weight: int
    """Share of live traffic in percent (0 for a shadow)."""
    shadow: bool = False
    """Receives a copy of live traffic; its answers are logged, never returned."""


@dataclass(frozen=True)
class ModelServingArgs:
    cluster: Cluster
    image: pulumi.Input[str]
    """The BentoML service image (serves on port 3000, /readyz, /livez, /metrics)."""
    variants: Sequence[Variant]
    tracking_uri: pulumi.Input[str]
    mlflow_credentials: tuple[SecretRef, SecretRef]
    feature_server_url: pulumi.Input[str]
    model_name: str = "credit-risk"
    canary_steps: Sequence[int] = (5, 25, 50, 100)
    min_replicas: int = 1
    max_replicas: int = 4
    resources: security.Resources = field(
        default_factory=lambda: security.Resources("250m", "512Mi", "2", "1Gi")
    )


def traffic_policy(args: ModelServingArgs, urls: dict[str, str]) -> dict:
    """The routing policy the champion's router reads: weights, canary steps, shadows."""
    live = [v for v in args.variants if not v.shadow]
    return {
        "model_name": args.model_name,
        "weights": {v.name: v.weight for v in live},
        "canary": {
            "variant": next((v.name for v in live if v.name != "champion"), None),
            "steps": list(args.canary_steps),
        },
        "shadow": [v.name for v in args.variants if v.shadow],
        "urls": urls,
    }


class ModelServing(pulumi.ComponentResource):
    """Deployment, Service, HPA and PDB per variant; the entry point is the champion's Service."""

    url: pulumi.Output[str]
    scrape_target: ScrapeTarget
    variant_urls: dict[str, str]

    def __init__(
        self, name: str, args: ModelServingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:ModelServing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster
        account = kube.service_account(f"{name}-sa", cluster, "serving", child)

        self.variant_urls = {
            v.name: f"http://{name}-{v.name}.{cluster.namespace}.svc.cluster.local:{PORT}"
            for v in args.variants
        }
        policy = k8s.core.v1.ConfigMap(
            f"{name}-traffic-policy",
            metadata=kube.meta(f"{name}-traffic-policy", cluster, APP, "traffic-policy"),
            data={"traffic-policy.json": json.dumps(traffic_policy(args, self.variant_urls))},
            opts=child,
        )
        user, password = args.mlflow_credentials
        for variant in args.variants:
            self._variant(name, variant, args, account, policy, user, password, child)

        self.scrape_target = ScrapeTarget(APP, "http")
        security.network_policy(
            f"{name}-allow-http",
            cluster.namespace_ref,
            {"app.kubernetes.io/name": APP},
            ingress=[
                security.allow_from(
                    [security.pod_peer(), security.namespace_peer(cluster.monitoring_namespace)],
                    security.tcp_ports(PORT),
                )
            ],
            opts=child,
        )
        self.url = pulumi.Output.from_input(self.variant_urls["champion"])
        self.register_outputs({"url": self.url, "variant_urls": self.variant_urls})

    def _variant(
        self,
        name: str,
        variant: Variant,
        args: ModelServingArgs,
        account: k8s.core.v1.ServiceAccount,
        policy: k8s.core.v1.ConfigMap,
        user: SecretRef,
        password: SecretRef,
        opts: pulumi.ResourceOptions,
    ) -> None:
        cluster, full = args.cluster, f"{name}-{variant.name}"
        container = security.container(
            "bentoml",
            args.image,
            env=[
                {"name": "MLOPS_VARIANT", "value": variant.name},
                {"name": "MLOPS_MODEL_NAME", "value": args.model_name},
                {"name": "MLOPS_MODEL_ALIAS", "value": variant.name},
                {"name": "MLOPS_TRAFFIC_POLICY", "value": POLICY_PATH},
                {"name": ENV_MLFLOW_URI, "value": args.tracking_uri},
                {"name": "BENTOML_HOME", "value": "/tmp/bentoml"},
                {"name": "BENTOML_DO_NOT_TRACK", "value": "true"},
                user.env("MLFLOW_TRACKING_USERNAME"),
                password.env("MLFLOW_TRACKING_PASSWORD"),
            ],
            ports=[{"name": "http", "containerPort": PORT}],
            probe=security.http_probe("/readyz", "http"),
            liveness=security.http_probe("/livez", "http"),
            resources=args.resources,
            mounts=[
                {
                    "name": "policy",
                    "mountPath": POLICY_PATH,
                    "subPath": "traffic-policy.json",
                    "readOnly": True,
                }
            ],
        )
        pod = security.pod_spec(
            [container],
            service_account=account.metadata["name"],
            volumes=[{"name": "policy", "configMap": {"name": policy.metadata["name"]}}],
        )
        role = variant.name  # the component label tells variants apart
        deployment = kube.deployment(
            full,
            cluster,
            APP,
            role,
            pod,
            opts,
            replicas=None,  # the HPA owns the count
            extra_labels={"mlops.io/variant": variant.name},
        )
        kube.service(full, cluster, APP, role, [("http", PORT)], opts)
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{full}-hpa",
            metadata=kube.meta(f"{full}-hpa", cluster, APP, role),
            spec={
                "scaleTargetRef": {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": deployment.metadata["name"],
                },
                "minReplicas": args.min_replicas,
                "maxReplicas": args.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": 70},
                        },
                    }
                ],
            },
            opts=opts,
        )
        # maxUnavailable (not minAvailable) so a single-replica variant never blocks a drain.
        k8s.policy.v1.PodDisruptionBudget(
            f"{full}-pdb",
            metadata=kube.meta(f"{full}-pdb", cluster, APP, role),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": security.selector(APP, role)}},
            opts=opts,
        )
