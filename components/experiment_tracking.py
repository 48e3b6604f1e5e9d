"""MLflow tracking server and model registry, with auth, on the platform's Postgres and S3."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import kube, security
from components.types import (
    Backends,
    Cluster,
    ScrapeTarget,
    SecretFile,
    SecretRef,
    mlflow_credentials_file,
)
from contract import commands, env, objectstore, paths

APP = "mlflow"
PORT = 5000
ADMIN_USER = "admin"
FLASK_KEY = "flask_secret_key"
# The platform's own MLflow clients; each authenticates as its own user, never as the admin.
# Every user reads (the server's default permission); writing takes ownership: MLflow gives the
# creator of an experiment or registered model MANAGE on it, so the pipeline, which creates
# both, writes them and no other workload can.
WORKLOAD_USERS = ("pipeline", "serving", "monitor", "governance")
# MLflow's basic-auth app reads this file; it holds the admin password and the database URL, so
# it lives in a Secret mounted read-only.
_AUTH_INI = """[mlflow]
default_permission = READ
database_uri = {database_url}
admin_username = {admin_user}
admin_password = {admin_password}
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
"""


@dataclass(frozen=True)
class ExperimentTrackingArgs:
    cluster: Cluster
    backends: Backends
    image: pulumi.Input[str]
    """The ML workload image (MLflow server and its Postgres/S3 drivers are installed in it)."""
    replicas: int = 1
    ingress_host: str | None = None
    """Public host name; an Ingress is created only when set."""
    artifact_gc_schedule: str = "30 4 * * *"
    # 4Gi: the server proxies artifact uploads (models, model cards) in two workers; at 2Gi the
    # e2e saw it OOM-killed mid-training run.
    resources: security.Resources = field(
        default_factory=lambda: security.Resources("250m", "1Gi", "2", "4Gi")
    )


class ExperimentTracking(pulumi.ComponentResource):
    """MLflow server: Postgres backend store, artifacts proxied to the object store, basic auth.

    Clients authenticate against :attr:`tracking_uri` with the MLflow credentials file in the
    Secret :attr:`credentials_secret` (key ``credentials``); artifacts never need direct bucket
    access.
    """

    tracking_uri: pulumi.Output[str]
    scrape_target: ScrapeTarget
    credentials_secret: pulumi.Output[str]
    workload_credentials: dict[str, pulumi.Output[str]]
    """Workload -> the Secret with its own user's MLflow credentials file."""
    users_job: k8s.batch.v1.Job
    """Creates the workload users; whatever uses MLflow as one of them runs after it."""

    def __init__(
        self, name: str, args: ExperimentTrackingArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:ExperimentTracking", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        cluster, backends = args.cluster, args.backends
        server = f"{name}-server"

        password = random.RandomPassword(
            f"{name}-admin-password", length=32, special=False, opts=child
        )
        account = kube.service_account(f"{name}-sa", cluster, APP, child)
        creds = kube.secret(
            f"{name}-credentials",
            cluster,
            APP,
            {
                "username": ADMIN_USER,  # Prometheus' basic auth reads these two keys
                "password": password.result,
                paths.CREDENTIALS_FILE: password.result.apply(
                    lambda p: mlflow_credentials_file(ADMIN_USER, p)
                ),
            },
            child,
        )
        auth_ini = pulumi.Output.all(backends.database_url, password.result).apply(
            lambda v: _AUTH_INI.format(
                database_url=v[0], admin_user=ADMIN_USER, admin_password=v[1]
            )
        )
        # The basic-auth app signs CSRF tokens with this key; MLflow refuses to start without
        # one, and every replica must share it.
        flask_key = random.RandomPassword(
            f"{name}-flask-secret-key", length=48, special=False, opts=child
        )
        auth = kube.secret(
            f"{name}-auth",
            cluster,
            APP,
            {"basic_auth.ini": auth_ini, FLASK_KEY: flask_key.result},
            child,
        )

        hosts = _allowed_hosts(server, cluster.namespace, args.ingress_host)
        s3_files = backends.object_store.files(APP)
        # Deduplicated (ml.experiments.dedup_store): a sweep's repeated files are stored once.
        artifacts = pulumi.Output.from_input(backends.object_store.buckets["artifacts"]).apply(
            objectstore.artifact_destination
        )
        container = security.container(
            "mlflow",
            args.image,
            command=list(commands.MLFLOW_SERVER),
            args=[
                "--host=0.0.0.0",
                f"--port={PORT}",
                "--workers=2",
                "--serve-artifacts",
                pulumi.Output.concat("--artifacts-destination=", artifacts),
                f"--app-name={commands.MLFLOW_APP}",  # basic auth + the governance write rule
                f"--allowed-hosts={','.join(hosts)}",
                "--expose-prometheus=/tmp/prometheus",
            ],
            env=[
                backends.database.env("MLFLOW_BACKEND_STORE_URI"),
                {"name": "MLFLOW_AUTH_CONFIG_PATH", "value": "/etc/mlflow/basic_auth.ini"},
                SecretRef(auth.metadata["name"], FLASK_KEY).env("MLFLOW_FLASK_SERVER_SECRET_KEY"),
                *backends.object_store.env(APP, bucket_names=False),
            ],
            ports=[{"name": "http", "containerPort": PORT}],
            probe=security.http_probe("/health", "http"),
            resources=args.resources,
            mounts=[
                {"name": "auth", "mountPath": "/etc/mlflow", "readOnly": True},
                *(f.mount() for f in s3_files),
            ],
        )
        pod = security.pod_spec(
            [container],
            service_account=account.metadata["name"],
            volumes=[
                security.secret_volume("auth", auth.metadata["name"]),
                *(f.volume() for f in s3_files),
            ],
        )
        deployment = kube.deployment(
            server, cluster, APP, "server", pod, child, replicas=args.replicas
        )
        kube.service(server, cluster, APP, "server", [("http", PORT)], child)
        self.credentials_secret = creds.metadata["name"]
        # MLflow's /metrics sits behind basic auth like every other route.
        self.scrape_target = ScrapeTarget(
            APP,
            "http",
            basic_auth=(
                SecretRef(creds.metadata["name"], "username"),
                SecretRef(creds.metadata["name"], "password"),
            ),
        )
        peers = [security.pod_peer(), security.namespace_peer(cluster.monitoring_namespace)]
        if args.ingress_host and cluster.ingress_class:
            self._ingress(f"{name}-ingress", server, args.ingress_host, cluster, child)
            peers.append({"namespaceSelector": {}})  # the ingress controller's namespace varies
        security.network_policy(
            f"{name}-allow-http",
            cluster.namespace_ref,
            security.selector(APP, "server"),
            ingress=[security.allow_from(peers, security.tcp_ports(PORT))],
            opts=child,
        )

        self.tracking_uri = pulumi.Output.from_input(
            f"http://{server}.{cluster.namespace}.svc.cluster.local:{PORT}"
        )
        self._workload_users(name, args, creds, account, deployment, child)
        self._artifact_gc(f"{name}-artifact-gc", args, artifacts, account, child)
        self.register_outputs(
            {"tracking_uri": self.tracking_uri, "credentials_secret": creds.metadata["name"]}
        )

    def _workload_users(
        self,
        name: str,
        args: ExperimentTrackingArgs,
        admin: k8s.core.v1.Secret,
        account: k8s.core.v1.ServiceAccount,
        server: k8s.apps.v1.Deployment,
        opts: pulumi.ResourceOptions,
    ) -> None:
        """A generated password and a credentials Secret per workload user, and the Job (the
        only pod with the admin's credentials) that creates the users on the server."""
        cluster = args.cluster
        passwords = {
            user: random.RandomPassword(
                f"{name}-{user}-password", length=32, special=False, opts=opts
            ).result
            for user in WORKLOAD_USERS
        }
        self.workload_credentials = {
            user: kube.secret(
                f"{name}-{user}-credentials",
                cluster,
                APP,
                {
                    paths.CREDENTIALS_FILE: password.apply(
                        lambda p, u=user: mlflow_credentials_file(u, p)
                    )
                },
                opts,
            ).metadata["name"]
            for user, password in passwords.items()
        }
        users_file = pulumi.Output.all(**passwords).apply(
            lambda by_user: json.dumps(by_user, sort_keys=True)
        )
        users = kube.secret(
            f"{name}-workload-users", cluster, APP, {paths.MLFLOW_USERS_FILE: users_file}, opts
        )
        files = [
            SecretFile("admin-credentials", admin.metadata["name"], paths.MLFLOW_CREDENTIALS_DIR),
            SecretFile(
                "users", users.metadata["name"], paths.MLFLOW_USERS_DIR, paths.MLFLOW_USERS_FILE
            ),
        ]
        command, *command_args = commands.MLFLOW_USERS
        container = security.container(
            "users",
            args.image,
            command=[command],
            args=command_args,
            env=[{"name": env.MLFLOW_TRACKING_URI, "value": self.tracking_uri}],
            mounts=[f.mount() for f in files],
            resources=security.BATCH,
        )
        pod = security.pod_spec(
            [container],
            service_account=account.metadata["name"],
            volumes=[f.volume() for f in files],
        )
        self.users_job = kube.job(
            f"{name}-users",
            cluster,
            APP,
            "users",
            pod,
            pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[server])),
        )

    @staticmethod
    def _artifact_gc(
        name: str,
        args: ExperimentTrackingArgs,
        store: pulumi.Output[str],
        account: k8s.core.v1.ServiceAccount,
        opts: pulumi.ResourceOptions,
    ) -> None:
        """Daily: delete artifact blobs no run references (``mlflow gc`` removes the runs).

        It runs as the server's service account with the server's bucket access and nothing
        else: no MLflow credentials, no database.
        """
        s3_files = args.backends.object_store.files(APP)
        command, *command_args = commands.ARTIFACT_GC
        container = security.container(
            "artifact-gc",
            args.image,
            command=[command],
            args=[*command_args, pulumi.Output.concat("--store=", store), "--grace-hours=24"],
            env=args.backends.object_store.env(APP, bucket_names=False),
            mounts=[f.mount() for f in s3_files],
            resources=security.BATCH,
        )
        pod = security.pod_spec(
            [container],
            service_account=account.metadata["name"],
            volumes=[f.volume() for f in s3_files],
        )
        kube.cron_job(name, args.cluster, APP, "artifact-gc", args.artifact_gc_schedule, pod, opts)

    @staticmethod
    def _ingress(
        name: str, service: str, host: str, cluster: Cluster, opts: pulumi.ResourceOptions
    ) -> k8s.networking.v1.Ingress:
        backend = {"service": {"name": service, "port": {"number": PORT}}}
        return k8s.networking.v1.Ingress(
            name,
            metadata=kube.meta(name, cluster, APP, "ingress"),
            spec={
                "ingressClassName": cluster.ingress_class,
                "rules": [
                    {
                        "host": host,
                        "http": {
                            "paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]
                        },
                    }
                ],
            },
            opts=opts,
        )


# Prometheus scrapes each pod at its IP, so the Host header is ``<pod IP>:5000``; pod IPs are
# private addresses on every platform we target (kind 10.244/16, EKS VPC CIDRs). MLflow's own
# default allow-list admits the same private ranges; public names stay refused, which
# is what the check is for (DNS rebinding).
PRIVATE_IP_HOSTS = ("10.*", "192.168.*", *(f"172.{i}.*" for i in range(16, 32)))


def _allowed_hosts(service: str, namespace: str, ingress_host: str | None) -> list[str]:
    """Host headers MLflow accepts: the Service's DNS names (with and without port), pod IPs."""
    names = [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        "localhost",
    ]
    hosts = [h for n in names for h in (n, f"{n}:{PORT}")] + list(PRIVATE_IP_HOSTS)
    return [*hosts, ingress_host] if ingress_host else hosts
