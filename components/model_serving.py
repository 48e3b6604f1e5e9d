"""BentoML model serving: one Deployment whose pods host every variant of the traffic policy.

Each pod routes in-process (``ml.serve``): the sticky salted-hash router picks the live variant,
shadows get copies. The component renders the policy with the data plane's own model
(:class:`contract.traffic.TrafficPolicy`) into the ConfigMap ``<name>-traffic-policy``, mounted
as a directory at :data:`contract.paths.POLICY_DIR` so that kubelet's updates reach running pods
(it never updates a ``subPath`` mount). Variants name registry aliases; pods start without a
champion, stay not ready until governance has one, and swap models when an alias moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import kube, security
from components.types import Backends, Cluster, ScrapeTarget, Services, feast_env
from contract import env, paths
from contract.traffic import CanaryPolicy, ShadowSpec, TrafficPolicy, VariantSpec

APP = "model-serving"
ROLE = "api"
PORT = 3000
CHAMPION = "champion"


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
    backends: Backends
    """The object store (prediction-log batches go to the reports bucket)."""
    services: Services
    """MLflow (URI and credentials) and the Feast configuration Secret."""
    model_name: str = "credit-risk"
    canary_steps: Sequence[int] = (5, 25, 50, 100)
    salt: str = "credit-risk-ab-1"
    """Hash salt of the sticky assignment; change it to start a new experiment."""
    min_replicas: int = 1
    max_replicas: int = 4
    resources: security.Resources = field(
        default_factory=lambda: security.Resources("250m", "512Mi", "2", "1Gi")
    )


def traffic_policy(args: ModelServingArgs) -> TrafficPolicy:
    """The policy every serving pod reads: live weights, shadows, and a canary when configured.

    Model refs are the registry aliases named like the variants. A canary releases the first
    non-champion live variant against the champion when canary steps are configured.
    """
    live = [v for v in args.variants if not v.shadow]
    challenger = next((v.name for v in live if v.name != CHAMPION), None)
    canary = None
    if challenger is not None and args.canary_steps and any(v.name == CHAMPION for v in live):
        canary = CanaryPolicy(
            variant=challenger, baseline=CHAMPION, steps=[float(s) for s in args.canary_steps]
        )
    return TrafficPolicy(
        model_name=args.model_name,
        salt=args.salt,
        variants={v.name: VariantSpec(model=v.name, weight=v.weight) for v in live},
        canary=canary,
        shadows=[ShadowSpec(name=v.name, model=v.name) for v in args.variants if v.shadow],
    )


def serving_env(args: ModelServingArgs) -> list[dict]:
    """Every variable a serving pod gets; each one is read by ``ml.serve`` or its libraries."""
    return [
        {"name": env.MODEL_NAME, "value": args.model_name},
        {"name": env.TRAFFIC_POLICY, "value": paths.POLICY_PATH},
        {"name": env.MLFLOW_TRACKING_URI, "value": args.services.tracking_uri},
        *feast_env(),
        *args.backends.object_store.env("serving"),
        # Names this pod's prediction-log batches, so pods never overwrite each other's.
        {"name": env.POD_NAME, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "BENTOML_HOME", "value": "/tmp/bentoml"},
        {"name": "BENTOML_DO_NOT_TRACK", "value": "true"},
    ]


# A directory mount (no subPath): kubelet swaps the ConfigMap in place, the server sees it.
POLICY_MOUNT = {"name": "policy", "mountPath": paths.POLICY_DIR, "readOnly": True}


class ModelServing(pulumi.ComponentResource):
    """One Deployment (every variant in each pod), its Service, HPA, PDB and traffic policy."""

    url: pulumi.Output[str]
    scrape_target: ScrapeTarget
    policy: TrafficPolicy

    def __init__(
        self, name: str, args: ModelServingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:ModelServing", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster = args.cluster
        account = kube.service_account(f"{name}-sa", cluster, "serving", child)
        self.policy = traffic_policy(args)
        config = k8s.core.v1.ConfigMap(
            f"{name}-traffic-policy",
            metadata=kube.meta(f"{name}-traffic-policy", cluster, APP, "traffic-policy"),
            data={paths.POLICY_FILE: self.policy.model_dump_json(indent=2, exclude_none=True)},
            opts=child,
        )
        s3_files = args.backends.object_store.files("serving")
        container = security.container(
            "bentoml",
            args.image,
            env=serving_env(args),
            ports=[{"name": "http", "containerPort": PORT}],
            probe=security.http_probe("/readyz", "http"),
            liveness=security.http_probe("/livez", "http"),
            resources=args.resources,
            mounts=[POLICY_MOUNT, *args.services.mounts("serving", *s3_files)],
        )
        pod = security.pod_spec(
            [container],
            service_account=account.metadata["name"],
            volumes=[
                {"name": "policy", "configMap": {"name": config.metadata["name"]}},
                *args.services.volumes("serving", *s3_files),
            ],
        )
        deployment = self._workload(name, cluster, pod, args.services.after_ready(child))
        self._scaling(name, args, deployment, child)
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
        self.url = pulumi.Output.from_input(
            f"http://{name}.{cluster.namespace}.svc.cluster.local:{PORT}"
        )
        self.register_outputs({"url": self.url})

    @staticmethod
    def _workload(
        name: str, cluster: Cluster, pod: dict, opts: pulumi.ResourceOptions
    ) -> k8s.apps.v1.Deployment:
        """Deployment and Service, both called ``name`` in Kubernetes (the entry point).

        Not :func:`kube.deployment`/:func:`kube.service`: those name the Kubernetes object after
        the Pulumi resource, and children of this component are named ``<name>-<role>``.
        """
        selector = security.selector(APP, ROLE)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=kube.meta(name, cluster, APP, ROLE),
            spec={
                "selector": {"matchLabels": selector},  # no replicas: the HPA owns the count
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0}},
                "template": {"metadata": {"labels": security.labels(APP, ROLE)}, "spec": pod},
            },
            opts=opts,
        )
        k8s.core.v1.Service(
            f"{name}-service",
            metadata=kube.meta(name, cluster, APP, ROLE),
            spec={
                "type": "ClusterIP",
                "selector": selector,
                "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}],
            },
            opts=opts,
        )
        return deployment

    @staticmethod
    def _scaling(
        name: str,
        args: ModelServingArgs,
        deployment: k8s.apps.v1.Deployment,
        opts: pulumi.ResourceOptions,
    ) -> None:
        cluster = args.cluster
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=kube.meta(f"{name}-hpa", cluster, APP, ROLE),
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
        # maxUnavailable (not minAvailable) so a single replica never blocks a node drain.
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=kube.meta(f"{name}-pdb", cluster, APP, ROLE),
            spec={"maxUnavailable": 1, "selector": {"matchLabels": security.selector(APP, ROLE)}},
            opts=opts,
        )
