"""Governance: build model cards and the report site, and publish them to the object store."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import kube, security
from components.types import Backends, Cluster, Services
from contract.commands import PUBLISH_SITE
from contract.objectstore import SITE_PREFIX

APP = "governance"


@dataclass(frozen=True)
class GovernanceArgs:
    cluster: Cluster
    backends: Backends
    services: Services
    image: pulumi.Input[str]


class Governance(pulumi.ComponentResource):
    """A Job running ``mlops docs publish``: builds the site and uploads it to the reports bucket.

    The command reads everything from its environment (registry URI and credentials, reports
    bucket), builds under /tmp (read-only root) and uploads under ``s3://<reports>/site/``. The
    Job re-runs whenever its spec changes (e.g. a new image digest).
    """

    def __init__(
        self, name: str, args: GovernanceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:Governance", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster, services = args.cluster, args.services
        account = kube.service_account(f"{name}-sa", cluster, APP, child)
        site = pulumi.Output.concat(
            "s3://", args.backends.object_store.buckets["reports"], "/", SITE_PREFIX
        )
        command, *command_args = PUBLISH_SITE
        wiring = services.wiring(args.backends.object_store, APP)
        container = security.container(
            "docs",
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
        job = kube.job(f"{name}-docs", cluster, APP, "docs", pod, services.after_ready(child))
        self.site_url = site
        self.register_outputs({"site_url": site, "job": job.metadata["name"]})
