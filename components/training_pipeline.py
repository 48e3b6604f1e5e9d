"""Training in the cluster: the bootstrap training Job and the frequent retraining CronJob.

Both run on the cluster's own feature data (the offline store in the object store, through
Feast) and only ever register a candidate and request its review; a person approves and
promotes it with ``mlops governance``. Retraining is triggered through the object store: the
drift monitor writes ``triggers/retrain.json`` to the reports bucket and the CronJob, which runs
every few minutes, does nothing unless a trigger is pending (or the champion is too old). So no
first-party pod needs the Kubernetes API: no Job template, no Role, no token.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import kube, security
from components.types import Backends, Cluster, Services
from contract import commands

APP = "training-pipeline"
WORKLOAD = "pipeline"  # its ServiceAccount and object-store access (components.types)
RESOURCES = security.Resources("500m", "1Gi", "2", "4Gi")


@dataclass(frozen=True)
class TrainingPipelineArgs:
    cluster: Cluster
    backends: Backends
    services: Services
    image: pulumi.Input[str]
    schedule: str = "*/15 * * * *"
    """How often retraining checks for a pending trigger (cheap when there is none)."""


class TrainingPipeline(pulumi.ComponentResource):
    """``pipeline-train`` Job (``mlops pipeline train``), ``pipeline-retrain`` CronJob."""

    train_job: pulumi.Output[str]
    retrain_cron_job: pulumi.Output[str]

    def __init__(
        self, name: str, args: TrainingPipelineArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:TrainingPipeline", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster, services = args.cluster, args.services
        account = kube.service_account(f"{name}-sa", cluster, WORKLOAD, child)

        wiring = services.wiring(args.backends.object_store, WORKLOAD)

        def pod(role: str, command: tuple[str, ...]) -> dict:
            container = security.container(
                role,
                args.image,
                command=list(command),
                env=wiring.env,
                mounts=wiring.mounts,
                resources=RESOURCES,
            )
            return security.pod_spec(
                [container], service_account=account.metadata["name"], volumes=wiring.volumes
            )

        train = kube.job(
            f"{name}-train",
            cluster,
            APP,
            "train",
            pod("train", commands.TRAIN),
            services.after_ready(child),
        )
        retrain = kube.cron_job(
            f"{name}-retrain",
            cluster,
            APP,
            "retrain",
            args.schedule,
            pod("retrain", commands.RETRAIN),
            child,
        )
        self.train_job = train.metadata["name"]
        self.retrain_cron_job = retrain.metadata["name"]
        self.register_outputs(
            {"train_job": self.train_job, "retrain_cron_job": self.retrain_cron_job}
        )
