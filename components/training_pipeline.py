"""Scheduled retraining, and the Job template the drift monitor instantiates on drift."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components import kube, security
from components.types import Backends, Cluster, Services

APP = "training-pipeline"
TEMPLATE_KEY = "job.json"


@dataclass(frozen=True)
class TrainingPipelineArgs:
    cluster: Cluster
    backends: Backends
    services: Services
    image: pulumi.Input[str]
    trigger_service_account: str
    """The ServiceAccount (the drift monitor's) allowed to create retrain Jobs, and only that."""
    schedule: str = "0 3 * * 0"


class TrainingPipeline(pulumi.ComponentResource):
    """Retrain CronJob (``mlops pipeline retrain``), Job template ConfigMap, trigger RBAC.

    The template is a complete ``batch/v1`` Job (``generateName: <name>-retrain-``) so the
    monitor creates it verbatim; it holds Secret references only, never secret values.
    """

    job_template_config_map: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:TrainingPipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster, services = args.cluster, args.services
        account = kube.service_account(f"{name}-sa", cluster, "pipeline", child)

        container = security.container(
            "retrain",
            args.image,
            command=["mlops"],
            args=["pipeline", "retrain"],
            env=[*services.env(), *args.backends.object_store.env("pipeline")],
            mounts=services.mounts(),
            resources=security.Resources("500m", "1Gi", "2", "4Gi"),
        )
        pod = security.pod_spec(
            [container], service_account=account.metadata["name"], volumes=services.volumes()
        )
        kube.cron_job(f"{name}-retrain", cluster, APP, "retrain", args.schedule, pod, child)

        job = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "generateName": f"{name}-retrain-",
                "namespace": cluster.namespace,
                "labels": {**security.labels(APP, "retrain"), "mlops.io/trigger": "drift"},
            },
            "spec": kube.job_spec(pod, APP, "retrain"),
        }
        template = k8s.core.v1.ConfigMap(
            f"{name}-job-template",
            metadata=kube.meta(f"{name}-job-template", cluster, APP, "job-template"),
            data={TEMPLATE_KEY: pulumi.Output.json_dumps(job)},
            opts=child,
        )
        self._trigger_rbac(name, cluster, args.trigger_service_account, child)

        self.job_template_config_map = template.metadata["name"]
        self.register_outputs({"job_template_config_map": self.job_template_config_map})

    @staticmethod
    def _trigger_rbac(
        name: str, cluster: Cluster, subject: str, opts: pulumi.ResourceOptions
    ) -> None:
        role = k8s.rbac.v1.Role(
            f"{name}-trigger-role",
            metadata=kube.meta(f"{name}-trigger", cluster, APP, "rbac"),
            rules=[
                {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get", "list"]}
            ],
            opts=opts,
        )
        k8s.rbac.v1.RoleBinding(
            f"{name}-trigger-binding",
            metadata=kube.meta(f"{name}-trigger", cluster, APP, "rbac"),
            role_ref={
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": role.metadata["name"],
            },
            subjects=[{"kind": "ServiceAccount", "name": subject, "namespace": cluster.namespace}],
            opts=opts,
        )
