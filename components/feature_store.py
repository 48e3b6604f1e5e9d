"""Feast: the online feature server, the registry bootstrap, ingestion and materialization.

The offline store is Parquet in the object store: ``feast-ingest`` (``mlops data ingest``)
validates the upstream batches in ``landing/`` into ``offline/<table>/``, which the feature
views' file sources read (``ml.features.definitions`` switches to them when the features
bucket is set); ``feast-materialize`` (``mlops features materialize``) loads new values into
Redis and pushes how far each view is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import yaml

from components import kube, security
from components.types import (
    FEAST_CONFIG_MOUNT,
    Backends,
    Cluster,
    ScrapeTarget,
    feast_config_volume,
    feast_env,
)
from contract import commands, paths
from contract import env as names

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
    pushgateway_url: pulumi.Input[str] | None = None
    """Where materialization pushes mlops_feature_materialized_until_timestamp_seconds."""
    materialize_schedule: str = "*/30 * * * *"
    ingest_schedule: str = "*/10 * * * *"
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
    """Feast server (Deployment + Service), ``feast apply`` Job, ingest + materialize CronJobs."""

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
        volumes = [feast_config_volume(config.metadata["name"])]
        mounts = [FEAST_CONFIG_MOUNT]  # a directory: Secret updates reach running pods
        store = backends.object_store.env(APP)  # endpoint, credentials file, features bucket
        s3_files = backends.object_store.files(APP)
        s3_mounts = [f.mount() for f in s3_files]
        yaml_env = {"name": names.FEAST_YAML, "value": paths.FEAST_YAML_PATH}

        def pod(container: dict, object_store: bool = True) -> dict:
            """The pod of ``container``, with the S3 credentials file unless it needs none."""
            files = [f.volume() for f in s3_files] if object_store else []
            return security.pod_spec(
                [container], service_account=account.metadata["name"], volumes=volumes + files
            )

        def feast(role: str, cli_args: list[str], env: list[dict], **kw: object) -> dict:
            return security.container(
                role,
                args.image,
                command=list(commands.FEAST),
                args=cli_args,
                env=env,
                mounts=mounts,
                **kw,  # type: ignore[arg-type]
            )

        serve = feast(
            "feature-server",
            ["serve", "--host=0.0.0.0", f"--port={PORT}", "--metrics", "--no-access-log"],
            [yaml_env],  # the server reads the registry and Redis, never the offline store
            ports=[
                {"name": "http", "containerPort": PORT},
                {"name": "metrics", "containerPort": METRICS_PORT},
            ],
            probe=security.http_probe("/health", "http"),
            resources=args.resources,
        )
        kube.deployment(
            server,
            cluster,
            APP,
            "server",
            pod(serve, object_store=False),
            child,
            replicas=args.replicas,
        )
        kube.service(
            server, cluster, APP, "server", [("http", PORT), ("metrics", METRICS_PORT)], child
        )
        self.scrape_target = ScrapeTarget(APP, "metrics")

        # `feast apply` registers the definitions in the SQL registry (with the sources over the
        # object store's offline folders); re-run on every change of the image (the Job name is
        # stable, so Pulumi replaces it when the spec changes).
        apply = security.container(
            "apply",
            args.image,
            command=list(commands.FEAST_APPLY[:-1]),
            args=list(commands.FEAST_APPLY[-1:]),
            env=[yaml_env, *store],  # the repo module points the sources at the bucket
            mounts=mounts + s3_mounts,
            resources=security.BATCH,
        )
        after_backends = pulumi.ResourceOptions.merge(
            child, pulumi.ResourceOptions(depends_on=list(backends.ready))
        )
        kube.job(f"{name}-apply", cluster, APP, "apply", pod(apply), after_backends)
        self._batch(
            name, "ingest", commands.INGEST, store, s3_mounts, args.ingest_schedule, pod, args
        )
        pushgateway = (
            [{"name": names.PUSHGATEWAY_URL, "value": args.pushgateway_url}]
            if args.pushgateway_url is not None
            else []
        )
        materialize_env = [*feast_env(), *store, *pushgateway]
        materialize = security.container(
            "materialize",
            args.image,
            command=list(commands.MATERIALIZE),
            env=materialize_env,
            mounts=mounts + s3_mounts,
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

    def _batch(self, name, role, command, env, mounts, schedule, pod, args) -> None:
        """A CronJob running ``command`` with only the object store's variables and files."""
        container = security.container(
            role,
            args.image,
            command=list(command),
            env=env,
            mounts=mounts,
            resources=security.BATCH,
        )
        kube.cron_job(
            f"{name}-{role}",
            args.cluster,
            APP,
            role,
            schedule,
            pod(container),
            pulumi.ResourceOptions(parent=self),
        )
