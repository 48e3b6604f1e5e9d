"""The contract between a platform (local cluster, AWS) and the cloud-agnostic components.

A platform turns a target into these values; components only consume them and never ask which
cloud they run on. Everything secret is handed over as a :class:`SecretRef` (a key of a
Kubernetes Secret the platform created), so pods read it with ``secretKeyRef`` and no secret
value ever appears in a pod spec or a ConfigMap.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pulumi

from contract import env, objectstore, paths

# Workloads that get their own ServiceAccount (and, on AWS, their own IAM role). The platform
# needs the names before the components exist, to scope IRSA trust policies to them.
WORKLOADS = ("mlflow", "feast", "serving", "pipeline", "monitor", "governance")

# Object-store buckets by role, and which workload may do what with which bucket. MLflow proxies
# artifacts (--serve-artifacts), so only the tracking server touches the artifacts bucket.
BUCKETS = objectstore.BUCKETS
BUCKET_ACCESS: Mapping[str, Mapping[str, str]] = {
    "mlflow": {"artifacts": "rw"},
    "serving": {"reports": "rw"},  # ships prediction-log batches
    "feast": {"features": "rw"},  # ingest writes the offline store
    "pipeline": {"features": "r", "reports": "rw"},  # reference window, consumes triggers
    "monitor": {"features": "r", "reports": "rw"},
    "governance": {"reports": "rw"},
}

# Names shared with the data plane live in contract/ (env vars, paths); these aliases keep the
# components' imports short.
ENV_MLFLOW_URI = env.MLFLOW_TRACKING_URI
ENV_FEAST_YAML = env.FEAST_YAML
ENV_PUSHGATEWAY = env.PUSHGATEWAY_URL
FEATURE_REPO_DIR = paths.FEATURE_REPO_DIR
FEAST_YAML_PATH = paths.FEAST_YAML_PATH


def service_account_name(workload: str) -> str:
    """The ServiceAccount name of a workload (IRSA subjects are built from it)."""
    return f"mlops-{workload}"


@dataclass(frozen=True)
class SecretRef:
    """One key of a Kubernetes Secret in the application namespace."""

    name: pulumi.Input[str]
    key: str

    def env(self, var: str) -> dict:
        """A container env entry that reads this key (never a literal value)."""
        return {"name": var, "valueFrom": {"secretKeyRef": {"name": self.name, "key": self.key}}}


@dataclass(frozen=True)
class SecretFile:
    """One key of a Secret as a file, in a directory mount (Kubernetes updates those in place).

    Credentials that a program can read from a file (the AWS SDKs, the MLflow client) reach it
    this way rather than as environment variables, which every child process inherits and
    which end up in crash reports and ``/proc/<pid>/environ``.
    """

    volume_name: str
    secret: pulumi.Input[str]
    directory: str
    key: str = paths.CREDENTIALS_FILE

    def volume(self) -> dict:
        items = [{"key": self.key, "path": self.key}]
        return {
            "name": self.volume_name,
            "secret": {"secretName": self.secret, "items": items, "defaultMode": 0o440},
        }

    def mount(self) -> dict:
        return {"name": self.volume_name, "mountPath": self.directory, "readOnly": True}


def aws_credentials_file(access_key: str, secret_key: str) -> str:
    """Static keys in the AWS shared-credentials format (profile ``default``)."""
    return f"[default]\naws_access_key_id = {access_key}\naws_secret_access_key = {secret_key}\n"


def mlflow_credentials_file(username: str, password: str) -> str:
    """What the MLflow client reads from ``~/.mlflow/credentials``."""
    return (
        f"[mlflow]\nmlflow_tracking_username = {username}\nmlflow_tracking_password = {password}\n"
    )


@dataclass(frozen=True)
class ObjectStore:
    """An S3-compatible store: bucket names by role, and how each workload authenticates.

    ``credentials`` maps a workload to the Secret holding its static keys as an AWS credentials
    file (key ``credentials``) where the store uses static keys (SeaweedFS); it is empty where
    pods get a role instead (S3 with IRSA).
    """

    endpoint_url: pulumi.Input[str] | None
    region: str
    buckets: Mapping[str, pulumi.Input[str]]
    credentials: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)

    def env(self, workload: str, bucket_names: bool = True) -> list[dict]:
        """The container env a workload needs to reach its buckets.

        ``bucket_names=False`` for third-party programs (``mlflow server``) that are told their
        bucket on the command line: they do not read ``MLOPS_<ROLE>_BUCKET``.
        """
        variables: list[dict] = [
            {"name": "AWS_REGION", "value": self.region},
            {"name": "AWS_DEFAULT_REGION", "value": self.region},
        ]
        if self.endpoint_url is not None:
            variables.append({"name": "AWS_ENDPOINT_URL_S3", "value": self.endpoint_url})
        if workload in self.credentials:
            variables.append(
                {"name": env.AWS_SHARED_CREDENTIALS_FILE, "value": paths.AWS_CREDENTIALS_PATH}
            )
        for role in BUCKET_ACCESS.get(workload, {}) if bucket_names else ():
            variables.append({"name": env.bucket(role), "value": self.buckets[role]})
        return variables

    def files(self, workload: str) -> list[SecretFile]:
        """The workload's credentials file, where the store uses static keys."""
        if workload not in self.credentials:
            return []
        secret = self.credentials[workload]
        return [SecretFile("s3-credentials", secret, paths.AWS_CREDENTIALS_DIR)]


@dataclass(frozen=True)
class Backends:
    """Connection details of the backing services, as secret Outputs and as Secret refs.

    The Outputs are for files that must embed them (feature_store.yaml, MLflow's auth config),
    which the components then store in Secrets; pods use the refs.
    """

    database_url: pulumi.Output[str]  # SQLAlchemy URL, postgresql+psycopg://...
    database: SecretRef
    redis_url: pulumi.Output[str]  # redis:// or rediss://
    redis: SecretRef
    feast_redis: pulumi.Output[str]  # Feast's "host:port,password=...,ssl=..." form
    object_store: ObjectStore
    # CIDRs / selectors pods must reach outside their namespace (NetworkPolicy egress rules).
    egress_rules: tuple[dict, ...] = ()
    # Resources Pulumi awaits until the services answer; one-shot Jobs that need the services
    # (feast apply) depend on them, or their few retries run out while a database starts.
    ready: tuple[pulumi.Resource, ...] = ()


@dataclass(frozen=True)
class Cluster:
    """Where components put their Kubernetes objects."""

    namespace: str
    # The same name as an Output of the Namespace resource: used in metadata so that every
    # object depends on its namespace existing.
    namespace_ref: pulumi.Input[str]
    storage_class: str | None
    ingress_class: str | None
    # Per-workload ServiceAccount annotations (IRSA role ARNs on AWS; empty locally).
    service_account_annotations: Mapping[str, Mapping[str, pulumi.Input[str]]]
    monitoring_namespace: str = "monitoring"


@dataclass(frozen=True)
class Services:
    """How first-party batch workloads reach the services other components run.

    Pipeline, monitor and governance jobs all get the same view of the platform from
    :meth:`env`, :meth:`volumes` and :meth:`mounts`.
    """

    tracking_uri: pulumi.Input[str]
    # workload -> the Secret with its own MLflow user's credentials file
    mlflow_credentials: Mapping[str, pulumi.Input[str]]
    feast_config_secret: pulumi.Input[str]
    pushgateway_url: pulumi.Input[str]
    # what must have run before a workload uses MLflow (the Job that creates the users)
    ready: tuple[pulumi.Resource, ...] = ()

    def env(self) -> list[dict]:
        return [
            {"name": env.MLFLOW_TRACKING_URI, "value": self.tracking_uri},
            *feast_env(),
            {"name": env.PUSHGATEWAY_URL, "value": self.pushgateway_url},
        ]

    def mlflow_file(self, workload: str) -> SecretFile:
        """The workload's own MLflow credentials, where the MLflow client reads them."""
        secret = self.mlflow_credentials[workload]
        return SecretFile("mlflow-credentials", secret, paths.MLFLOW_CREDENTIALS_DIR)

    def volumes(self, workload: str, *files: SecretFile) -> list[dict]:
        """The Feast configuration, the workload's MLflow credentials and ``files`` (S3 keys)."""
        extra = [f.volume() for f in (self.mlflow_file(workload), *files)]
        return [feast_config_volume(self.feast_config_secret), *extra]

    def mounts(self, workload: str, *files: SecretFile) -> list[dict]:
        own = (self.mlflow_file(workload), *files)
        return [FEAST_CONFIG_MOUNT, *(f.mount() for f in own)]

    def after_ready(self, opts: pulumi.ResourceOptions) -> pulumi.ResourceOptions:
        """``opts`` that also wait for :attr:`ready` (a Job would fail authenticating before)."""
        return pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(depends_on=list(self.ready))
        )

    def wiring(self, store: ObjectStore, workload: str) -> PodWiring:
        """Env, volumes and mounts of a batch workload that uses the services and the store."""
        files = store.files(workload)
        return PodWiring(
            env=[*self.env(), *store.env(workload)],
            volumes=self.volumes(workload, *files),
            mounts=self.mounts(workload, *files),
        )


@dataclass(frozen=True)
class PodWiring:
    env: list[dict]
    volumes: list[dict]
    mounts: list[dict]


def feast_env() -> list[dict]:
    """Where Feast finds the repository (in the image) and the cluster's feature_store.yaml."""
    return [
        {"name": env.FEAST_YAML, "value": paths.FEAST_YAML_PATH},
        {"name": env.FEATURE_REPO, "value": paths.FEATURE_REPO_DIR},
    ]


def feast_config_volume(secret_name: pulumi.Input[str]) -> dict:
    return {"name": "feast-config", "secret": {"secretName": secret_name, "defaultMode": 0o440}}


# A directory mount (no subPath): Kubernetes updates Secret/ConfigMap volumes in place only then.
FEAST_CONFIG_MOUNT = {
    "name": "feast-config",
    "mountPath": paths.FEAST_CONFIG_DIR,
    "readOnly": True,
}


@dataclass(frozen=True)
class ScrapeTarget:
    """A first-party Service for Prometheus: Services labelled ``app.kubernetes.io/name: app``.

    Components declare it; Monitoring turns each into a ServiceMonitor once the Prometheus
    Operator's CRDs exist.
    """

    app: str
    port: str
    path: str = "/metrics"
    basic_auth: tuple[SecretRef, SecretRef] | None = None
