"""The local target: an existing cluster (kind, k3d, minikube) from the kubeconfig context.

Backing services come from pinned upstream Helm charts in the ``mlops-data`` namespace:
Postgres via the CloudNativePG operator, Valkey from the Valkey project's chart, and SeaweedFS
as the S3-compatible store (MinIO community images are discontinued). Every password and key is
generated with pulumi_random and handed to the charts through Secrets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import charts, security
from components.types import BUCKET_ACCESS, BUCKETS, ObjectStore, aws_credentials_file
from contract import paths
from infra.config import StackConfig
from infra.platforms import base

DATA_NS = "mlops-data"
CNPG_NS = "cnpg-system"
POSTGRES_IMAGE = "ghcr.io/cloudnative-pg/postgresql:17.5"
DB_NAME = DB_USER = "mlops"
S3_REGION = "us-east-1"  # SeaweedFS ignores the region; S3 clients insist on one


def _svc(name: str, port: int) -> str:
    return f"{name}.{DATA_NS}.svc.cluster.local:{port}"


class LocalPlatform(pulumi.ComponentResource):
    """Namespaces, the three backing services and their connection Secrets."""

    platform: base.Platform

    def __init__(
        self, name: str, cfg: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:index:LocalPlatform", name, None, opts)
        provider = k8s.Provider(
            f"{name}-k8s", context=cfg.kube_context, opts=pulumi.ResourceOptions(parent=self)
        )
        child = pulumi.ResourceOptions(parent=self, providers={"kubernetes": provider})
        self.ready: list[pulumi.Resource] = []  # what Jobs needing the services wait for
        stateful = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=cfg.protect))
        self._namespaces(name, cfg.namespace, child)
        db_url = self._postgres(name, cfg, child, stateful)
        redis_pw = self._valkey(name, cfg, stateful)
        store, credentials = self._seaweedfs(name, cfg, child, stateful)

        egress = [
            security.allow_to(
                [security.namespace_peer(DATA_NS)], security.tcp_ports(5432, 6379, 8333)
            )
        ]
        ns = base.app_namespace(name, cfg.namespace, egress, child)
        redis_host = _svc("valkey", 6379)
        redis_url = pulumi.Output.concat("redis://:", redis_pw, "@", redis_host, "/0")
        refs = base.connection_secrets(
            name, ns.metadata["name"], {"database": db_url, "redis": redis_url}, child
        )
        s3_refs = self._workload_keys(name, ns, credentials, child)
        self.platform = base.Platform(
            provider=provider,
            cluster=base.cluster(cfg.namespace, ns, cfg.storage_class, cfg.ingress_class, {}),
            backends=base.backends(
                refs,
                db_url,
                redis_url,
                pulumi.Output.concat(redis_host, ",password=", redis_pw),
                object_store=ObjectStore(
                    endpoint_url=f"http://{_svc('seaweedfs-s3', 8333)}",
                    region=S3_REGION,
                    buckets=store,
                    credentials=s3_refs,
                ),
                egress_rules=tuple(egress),
                ready=tuple(self.ready),
            ),
            outputs={"objectStoreBuckets": store},
        )
        self.register_outputs({"namespace": ns.metadata["name"]})

    def _namespaces(self, name: str, app_ns: str, opts: pulumi.ResourceOptions) -> None:
        """Third-party namespaces: ``baseline`` (the charts' pods are not all ``restricted``).

        The data namespace denies ingress except from itself, the platform, the operator and
        Prometheus; egress stays open for the operator's and instances' API-server calls.
        """
        self.ns = {
            ns: k8s.core.v1.Namespace(
                f"{name}-{ns}",
                metadata={"name": ns, "labels": security.namespace_labels("baseline")},
                opts=opts,
            ).metadata["name"]
            for ns in (DATA_NS, CNPG_NS)
        }
        data = self.ns[DATA_NS]
        security.network_policy(f"{name}-data-default-deny", data, {}, ingress=[], opts=opts)
        peers = [security.pod_peer()] + [
            security.namespace_peer(n) for n in (app_ns, CNPG_NS, "monitoring")
        ]
        security.network_policy(
            f"{name}-data-allow-ingress", data, {}, ingress=[security.allow_from(peers)], opts=opts
        )

    def _release(
        self,
        name: str,
        key: str,
        namespace: pulumi.Input[str],
        values: dict,
        opts: pulumi.ResourceOptions,
    ) -> k8s.helm.v3.Release:
        release = charts.release(f"{name}-{key}", key, key, namespace, values, opts)
        if key != "cnpg":  # the services themselves (Helm waits for their pods)
            self.ready.append(release)
        return release

    def _postgres(
        self,
        name: str,
        cfg: StackConfig,
        opts: pulumi.ResourceOptions,
        stateful: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        operator = self._release(name, "cnpg", self.ns[CNPG_NS], {"crds": {"create": True}}, opts)
        password = random.RandomPassword(
            f"{name}-postgres-password", length=32, special=False, opts=opts
        )
        # CNPG's initdb takes the owner's credentials from a basic-auth Secret.
        auth = k8s.core.v1.Secret(
            f"{name}-postgres-auth",
            metadata={"name": "postgres-app-auth", "namespace": self.ns[DATA_NS]},
            type="kubernetes.io/basic-auth",
            string_data={"username": DB_USER, "password": password.result},
            opts=opts,
        )
        storage: dict = {"size": "5Gi"}
        if cfg.storage_class:
            storage["storageClass"] = cfg.storage_class
        self.ready.append(
            k8s.apiextensions.CustomResource(
                f"{name}-postgres",
                api_version="postgresql.cnpg.io/v1",
                kind="Cluster",
                metadata={
                    "name": "postgres",
                    "namespace": self.ns[DATA_NS],
                    # Pulumi does not await custom resources unless told what ready means;
                    # CNPG sets Ready=True when the cluster is healthy (provider >= 4.18).
                    "annotations": {
                        "pulumi.com/waitFor": "condition=Ready",
                        "pulumi.com/timeoutSeconds": "900",
                    },
                },
                spec={
                    "instances": 1,
                    "imageName": POSTGRES_IMAGE,
                    "storage": storage,
                    "bootstrap": {
                        "initdb": {
                            "database": DB_NAME,
                            "owner": DB_USER,
                            "secret": {"name": auth.metadata["name"]},
                        }
                    },
                },
                opts=pulumi.ResourceOptions.merge(
                    stateful, pulumi.ResourceOptions(depends_on=[operator])
                ),
            )
        )
        return pulumi.Output.concat(
            f"postgresql+psycopg://{DB_USER}:",
            password.result,
            f"@{_svc('postgres-rw', 5432)}/{DB_NAME}?sslmode=require",
        )

    def _valkey(
        self, name: str, cfg: StackConfig, stateful: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        password = random.RandomPassword(
            f"{name}-valkey-password", length=32, special=False, opts=stateful
        )
        users = k8s.core.v1.Secret(
            f"{name}-valkey-users",
            metadata={"name": "valkey-users", "namespace": self.ns[DATA_NS]},
            type="Opaque",
            string_data={"default": password.result},
            opts=stateful,
        )
        storage: dict = {"enabled": True, "requestedSize": "1Gi"}
        if cfg.storage_class:
            storage["className"] = cfg.storage_class
        self._release(
            name,
            "valkey",
            self.ns[DATA_NS],
            {
                "fullnameOverride": "valkey",
                "auth": {
                    "enabled": True,
                    "usersExistingSecret": users.metadata["name"],
                    "aclUsers": {"default": {"permissions": "~* &* +@all"}},
                },
                "dataStorage": storage,
            },
            stateful,
        )
        return password.result

    def _seaweedfs(
        self,
        name: str,
        cfg: StackConfig,
        opts: pulumi.ResourceOptions,
        stateful: pulumi.ResourceOptions,
    ) -> tuple[dict[str, str], dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]]]:
        """SeaweedFS with one S3 identity per workload, scoped to its buckets like IAM."""
        buckets = {role: f"mlops-{role}" for role in BUCKETS}
        keys = {
            w: (
                random.RandomString(
                    f"{name}-s3-{w}-key",
                    length=20,
                    special=False,
                    upper=True,
                    lower=False,
                    opts=opts,
                ).result,
                random.RandomPassword(
                    f"{name}-s3-{w}-secret", length=40, special=False, opts=opts
                ).result,
            )
            for w in BUCKET_ACCESS
        }
        identities = pulumi.Output.all(*[k for pair in keys.values() for k in pair]).apply(
            lambda flat: json.dumps(_identities(list(keys), flat, buckets))
        )
        config = k8s.core.v1.Secret(
            f"{name}-s3-identities",
            metadata={"name": "seaweedfs-s3-config", "namespace": self.ns[DATA_NS]},
            type="Opaque",
            string_data={"seaweedfs_s3_config": pulumi.Output.secret(identities)},
            opts=opts,
        )
        self._release(
            name,
            "seaweedfs",
            self.ns[DATA_NS],
            seaweedfs_values(buckets.values(), config.metadata["name"], cfg.storage_class or ""),
            stateful,
        )
        return buckets, keys

    def _workload_keys(
        self,
        name: str,
        ns: k8s.core.v1.Namespace,
        keys: dict[str, tuple[pulumi.Output[str], pulumi.Output[str]]],
        opts: pulumi.ResourceOptions,
    ) -> dict[str, pulumi.Output[str]]:
        """Each workload's S3 keys in its own Secret in the application namespace.

        Pods mount the ``credentials`` key (the AWS credentials-file format); the two plain
        keys are for people and tools reading the Secret.
        """
        secrets = {}
        for workload, (access, secret) in keys.items():
            credentials = pulumi.Output.all(access, secret).apply(
                lambda pair: aws_credentials_file(*pair)
            )
            s = k8s.core.v1.Secret(
                f"{name}-s3-{workload}",
                metadata={
                    "name": f"mlops-{workload}-s3",
                    "namespace": ns.metadata["name"],
                    "labels": security.labels(workload, "s3-credentials"),
                },
                type="Opaque",
                string_data={
                    "AWS_ACCESS_KEY_ID": pulumi.Output.secret(access),
                    "AWS_SECRET_ACCESS_KEY": pulumi.Output.secret(secret),
                    paths.CREDENTIALS_FILE: pulumi.Output.secret(credentials),
                },
                opts=opts,
            )
            secrets[workload] = s.metadata["name"]
        return secrets


def seaweedfs_values(
    buckets: Iterable[str], config_secret: pulumi.Input[str], storage_class: str
) -> dict:
    """Values for SeaweedFS chart 4.44.0 (read against its templates).

    The chart keeps every store and log on ``hostPath`` by default (so existing releases keep
    upgrading), which Pod Security ``baseline`` in the data namespace forbids: data goes to
    PVCs (``""``: the cluster's default class), logs to ``emptyDir``. The post-install/upgrade
    bucket hook of this version reads ``s3.createBuckets`` and skips buckets that exist.
    """

    def claim(size: str) -> dict:
        return {"type": "persistentVolumeClaim", "size": size, "storageClass": storage_class}

    scratch = {"type": "emptyDir"}
    return {
        "fullnameOverride": "seaweedfs",
        "master": {"replicas": 1, "data": claim("1Gi"), "logs": scratch},
        "volume": {
            "replicas": 1,
            "dataDirs": [{"name": "data1", **claim("10Gi"), "maxVolumes": 0}],
        },
        "filer": {"replicas": 1, "data": claim("1Gi"), "logs": scratch},
        "s3": {
            "enabled": True,
            "enableAuth": True,
            "existingConfigSecret": config_secret,
            "createBuckets": [{"name": b} for b in buckets],
            "logs": scratch,
        },
    }


_ACTIONS = {"r": ("Read", "List"), "rw": ("Read", "List", "Write")}


def _identities(workloads: list[str], flat: list[str], buckets: dict[str, str]) -> dict:
    """SeaweedFS identities JSON: bucket-scoped actions (``Read:bucket``) per workload."""
    identities = []
    for i, workload in enumerate(workloads):
        actions = [
            f"{action}:{buckets[role]}"
            for role, mode in BUCKET_ACCESS[workload].items()
            for action in _ACTIONS[mode]
        ]
        creds = [{"accessKey": flat[2 * i], "secretKey": flat[2 * i + 1]}]
        identities.append({"name": workload, "credentials": creds, "actions": actions})
    return {"identities": identities}
