"""Feast: the online feature server, the registry bootstrap and incremental materialization."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import yaml

from components import kube, security
from components.types import (
    ENV_FEAST_YAML,
    FEAST_YAML_PATH,
    FEATURE_REPO_DIR,
    Backends,
    Cluster,
    ScrapeTarget,
)

APP = "feast"
PORT = 6566
METRICS_PORT = 8000  # `feast serve --metrics` exposes Prometheus metrics here
PROJECT = "credit_risk"  # must match ml/features/environments/*.yaml


@dataclass(frozen=True)
class FeatureStoreArgs:
    cluster: Cluster
    backends: Backends
    image: pulumi.Input[str]
    """The ML workload image; it holds the Feast repository at ``FEATURE_REPO_DIR``."""
    materialize_schedule: str = "*/30 * * * *"
    replicas: int = 1
    resources: security.Resources = field(default_factory=security.Resources)


def feature_store_yaml(database_url: str, redis: str) -> str:
    """The cluster's feature_store.yaml: SQL registry on Postgres, Redis online store.

    The offline store is Parquet on the object store (sources under ``s3://$MLOPS_FEATURES_BUCKET``,
    endpoint from ``AWS_ENDPOINT_URL_S3``). The file holds connection strings, so it is a Secret.
    """
    return yaml.safe_dump(
        {
            "project": PROJECT,
            "provider": "local",
            "registry": {
                "registry_type": "sql",
                "path": database_url,
                "cache_ttl_seconds": 60,
                "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
            },
            "online_store": {"type": "redis", "connection_string": redis},
            "offline_store": {"type": "file"},
            "entity_key_serialization_version": 3,
        },
        sort_keys=False,
    )


class FeatureStore(pulumi.ComponentResource):
    """Feast feature server (Deployment + Service), ``feast apply`` Job, materialize CronJob."""

    server_url: pulumi.Output[str]
    scrape_target: ScrapeTarget
    config_secret: pulumi.Output[str]

    def __init__(
        self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:FeatureStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster, backends = args.cluster, args.backends
        server = f"{name}-server"

        account = kube.service_account(f"{name}-sa", cluster, APP, child)
        config_text = pulumi.Output.all(backends.database_url, backends.feast_redis).apply(
            lambda v: feature_store_yaml(*v)
        )
        config = kube.secret(
            f"{name}-config", cluster, APP, {"feature_store.yaml": config_text}, child
        )
        volumes = [security.secret_volume("feast-config", config.metadata["name"])]
        mounts = [
            {
                "name": "feast-config",
                "mountPath": FEAST_YAML_PATH,
                "subPath": "feature_store.yaml",
                "readOnly": True,
            }
        ]
        env = [{"name": ENV_FEAST_YAML, "value": FEAST_YAML_PATH}, *backends.object_store.env(APP)]

        def pod(container: dict) -> dict:
            return security.pod_spec(
                [container], service_account=account.metadata["name"], volumes=volumes
            )

        def feast(role: str, cli_args: list[str], **kw: object) -> dict:
            return security.container(
                role,
                args.image,
                command=[
                    "feast",
                    "--chdir",
                    FEATURE_REPO_DIR,
                    "--feature-store-yaml",
                    FEAST_YAML_PATH,
                ],
                args=cli_args,
                env=env,
                mounts=mounts,
                **kw,  # type: ignore[arg-type]
            )

        serve = feast(
            "feature-server",
            ["serve", "--host=0.0.0.0", f"--port={PORT}", "--metrics", "--no-access-log"],
            ports=[
                {"name": "http", "containerPort": PORT},
                {"name": "metrics", "containerPort": METRICS_PORT},
            ],
            probe=security.http_probe("/health", "http"),
            resources=args.resources,
        )
        kube.deployment(server, cluster, APP, "server", pod(serve), child, replicas=args.replicas)
        kube.service(
            server, cluster, APP, "server", [("http", PORT), ("metrics", METRICS_PORT)], child
        )
        self.scrape_target = ScrapeTarget(APP, "metrics")

        # `feast apply` registers the definitions in the SQL registry; re-run on every change
        # of the image (the Job name is stable, so Pulumi replaces it when the spec changes).
        apply = feast("apply", ["apply"], resources=security.BATCH)
        kube.job(f"{name}-apply", cluster, APP, "apply", pod(apply), child)
        materialize = security.container(
            "materialize",
            args.image,
            command=["mlops"],
            args=["features", "materialize"],
            env=env,
            mounts=mounts,
            resources=security.BATCH,
        )
        kube.cron_job(
            f"{name}-materialize",
            cluster,
            APP,
            "materialize",
            args.materialize_schedule,
            pod(materialize),
            child,
        )
        security.network_policy(
            f"{name}-allow-http",
            cluster.namespace_ref,
            security.selector(APP, "server"),
            ingress=[
                security.allow_from([security.pod_peer()], security.tcp_ports(PORT)),
                security.allow_from(
                    [security.namespace_peer(cluster.monitoring_namespace)],
                    security.tcp_ports(METRICS_PORT),
                ),
            ],
            opts=child,
        )

        self.server_url = pulumi.Output.from_input(
            f"http://{server}.{cluster.namespace}.svc.cluster.local:{PORT}"
        )
        self.config_secret = config.metadata["name"]
        self.register_outputs({"server_url": self.server_url, "config_secret": self.config_secret})
