"""Shared fixtures for the build-document-delete script tests: a hand-built aws-dev inventory
and a fake Automation API stack that records what was called, in order."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace
from typing import Any

from pulumi.automation import ConfigValue, Deployment, OutputValue


def _r(type_: str, name: str, parent: str | None = "mlops-aws-dev", **inputs: Any) -> dict:
    return {"type": type_, "name": name, "parent": parent, "inputs": inputs}


# What `mlops infra render --stack aws-dev` produces, in shape and in the classes
# stacks/Pulumi.aws-dev.yaml configures (wire names are camelCase).
AWS_DEV_INVENTORY: list[dict] = [
    _r("pulumi:pulumi:Stack", "mlops-aws-dev", None),
    _r("pulumi:providers:aws", "default_7_51_1", region="us-east-1"),
    _r("mlops:index:AwsPlatform", "aws"),
    _r("aws:ec2/vpc:Vpc", "aws-vpc", "aws", cidrBlock="10.40.0.0/16"),
    *[_r("aws:ec2/subnet:Subnet", f"aws-private-{i}", "aws") for i in range(4)],
    _r("aws:ec2/eip:Eip", "aws-nat-ip", "aws", domain="vpc"),
    _r("aws:ec2/natGateway:NatGateway", "aws-nat", "aws"),
    _r("aws:eks/cluster:Cluster", "aws-eks", "aws", version="1.36"),
    _r(
        "aws:eks/nodeGroup:NodeGroup",
        "aws-nodes",
        "aws",
        instanceTypes=["m6i.large"],
        scalingConfig={"desiredSize": 2, "minSize": 2, "maxSize": 4},
        diskSize=50,
    ),
    _r(
        "aws:rds/instance:Instance",
        "aws-postgres",
        "aws",
        instanceClass="db.t4g.medium",
        allocatedStorage=20,
        multiAz=False,
        password="[secret]",
    ),
    _r(
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws-redis",
        "aws",
        nodeType="cache.t4g.small",
        numCacheClusters=1,
    ),
    *[_r("aws:s3/bucketV2:BucketV2", f"aws-{b}", "aws") for b in ("artifacts", "features")],
    _r("aws:ecr/repository:Repository", "aws-ml", "aws"),
    _r("aws:iam/role:Role", "aws-mlflow-role", "aws"),
    _r("mlops:index:ExperimentTracking", "mlflow"),
    _r("kubernetes:apps/v1:Deployment", "mlflow-server", "mlflow"),
    _r("kubernetes:core/v1:Service", "mlflow-server", "mlflow"),
    _r("mlops:index:ModelServing", "serving"),
    *[
        _r("kubernetes:apps/v1:Deployment", f"serving-{v}", "serving")
        for v in ("champion", "challenger", "shadow", "canary")
    ],
    _r("kubernetes:helm.sh/v3:Release", "kube-prometheus-stack", "mlops-aws-dev"),
]

# m6i.large x2 (140.16) + 2 x 50 GB gp3 (8.00) + EKS (73.00) + db.t4g.medium (47.45)
# + 20 GB RDS storage (2.30) + cache.t4g.small (23.36) + NAT (32.85) + public IPv4 (3.65)
AWS_DEV_MONTHLY_USD = 330.77


class FakeStack:
    """Implements the StackLike protocol; ``calls`` records every mutating call in order."""

    def __init__(
        self,
        name: str,
        config: dict[str, str] | None = None,
        outputs: dict[str, Any] | None = None,
        left_after_destroy: list[dict] | None = None,
        history: list[Any] | None = None,
    ) -> None:
        self.name = name
        self.workspace = SimpleNamespace(env_vars={})
        self.calls: list[tuple] = []
        self._config = {k: ConfigValue(v) for k, v in (config or {}).items()}
        self._outputs = outputs or {}
        self._left = left_after_destroy or []
        self._history = history or []
        self.destroyed = False

    def set_config(self, key: str, value: ConfigValue, *, path: bool = False) -> None:
        self.calls.append(("set_config", key, value.value))
        self._config[key] = value

    def get_all_config(self) -> dict[str, ConfigValue]:
        return dict(self._config)

    def up(self, **kwargs: Any) -> None:
        self.calls.append(("up",))

    def destroy(self, **kwargs: Any) -> None:
        self.calls.append(("destroy",))
        self.destroyed = True

    def outputs(self) -> dict[str, OutputValue]:
        return {k: OutputValue(v, secret=k.endswith("Password")) for k, v in self._outputs.items()}

    def export_stack(self) -> Deployment:
        self.calls.append(("export_stack",))
        stack = {"type": "pulumi:pulumi:Stack", "urn": f"urn:pulumi:{self.name}::mlops::s"}
        resources = [stack, *self._left] if self.destroyed else [stack]
        return Deployment(version=3, deployment={"resources": resources})

    def history(self) -> list[Any]:
        return self._history


class Update:
    def __init__(self, start: datetime, kind: str = "update", result: str = "succeeded"):
        self.start_time, self.kind, self.result = start, kind, result
