"""What each stack is for: prod is protected and highly available, dev expires, local is local."""

from __future__ import annotations

import json

import pytest

from components.types import BUCKET_ACCESS

STATEFUL = (
    "aws:rds/instance:Instance",
    "aws:elasticache/replicationGroup:ReplicationGroup",
    "aws:s3/bucket:Bucket",
    "aws:ecr/repository:Repository",
    "aws:kms/key:Key",
)


def test_prod_database_is_protected_and_multi_az(aws_prod) -> None:
    (db,) = aws_prod.of_type("aws:rds/instance:Instance")
    assert db.inputs["deletionProtection"] is True and db.inputs["multiAz"] is True
    assert db.inputs["backupRetentionPeriod"] >= 30 and db.inputs["skipFinalSnapshot"] is False


def test_prod_cache_fails_over_across_zones(aws_prod) -> None:
    (cache,) = aws_prod.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert cache.inputs["multiAzEnabled"] is True
    assert cache.inputs["automaticFailoverEnabled"] is True
    assert cache.inputs["numCacheClusters"] >= 2


def test_prod_protects_stateful_resources(aws_prod, aws_dev) -> None:
    for token in STATEFUL:
        assert all(r.protect for r in aws_prod.of_type(token)), token
        assert not any(r.protect for r in aws_dev.of_type(token)), token


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_data_services_are_private_and_encrypted(stack, aws_dev, aws_prod) -> None:
    r = {"aws-dev": aws_dev, "aws-prod": aws_prod}[stack]
    (db,) = r.of_type("aws:rds/instance:Instance")
    assert db.inputs["publiclyAccessible"] is False and db.inputs["storageEncrypted"] is True
    (cache,) = r.of_type("aws:elasticache/replicationGroup:ReplicationGroup")
    assert cache.inputs["transitEncryptionEnabled"] and cache.inputs["atRestEncryptionEnabled"]
    assert cache.inputs["authToken"] == "[secret]"
    blocks = r.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    buckets = r.of_type("aws:s3/bucket:Bucket")
    assert len(blocks) == len(buckets) == 3
    assert all(
        all(
            b.inputs[k]
            for k in (
                "blockPublicAcls",
                "blockPublicPolicy",
                "ignorePublicAcls",
                "restrictPublicBuckets",
            )
        )
        for b in blocks
    )
    versioning = r.of_type("aws:s3/bucketVersioning:BucketVersioning")
    assert all(v.inputs["versioningConfiguration"]["status"] == "Enabled" for v in versioning)
    assert (
        len(
            r.of_type(
                "aws:s3/bucketServerSideEncryptionConfiguration:"
                "BucketServerSideEncryptionConfiguration"
            )
        )
        == 3
    )
    for policy in r.of_type("aws:s3/bucketPolicy:BucketPolicy"):
        doc = json.loads(policy.inputs["policy"])
        assert doc["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for repo in r.of_type("aws:ecr/repository:Repository"):
        assert repo.inputs["imageTagMutability"] == "IMMUTABLE"
        assert repo.inputs["imageScanningConfiguration"] == {"scanOnPush": True}


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_workload_roles_reach_exactly_their_buckets(stack, aws_dev, aws_prod) -> None:
    r = {"aws-dev": aws_dev, "aws-prod": aws_prod}[stack]
    arns = {
        b.name.removeprefix("aws-"): f"arn:aws:s3:::{b.name}-"
        for b in r.of_type("aws:s3/bucket:Bucket")
    }
    policies = {
        p.name: json.loads(p.inputs["policy"]) for p in r.of_type("aws:iam/rolePolicy:RolePolicy")
    }
    for workload, access in BUCKET_ACCESS.items():
        doc = policies[f"aws-{workload}-s3"]
        resources = [
            res
            for s in doc["Statement"]
            if s["Action"][0].startswith("s3:")
            for res in s["Resource"]
        ]
        reached = {
            role for role, prefix in arns.items() if any(x.startswith(prefix) for x in resources)
        }
        assert reached == set(access), workload
        for s in doc["Statement"]:
            writes = "s3:PutObject" in s["Action"]
            for res in s["Resource"]:
                role = next((k for k, p in arns.items() if res.startswith(p)), None)
                if writes and role:
                    assert access[role] == "rw", f"{workload} may write {role}"
    trusts = {
        t.name: json.loads(t.inputs["assumeRolePolicy"]) for t in r.of_type("aws:iam/role:Role")
    }
    for workload in BUCKET_ACCESS:
        cond = trusts[f"aws-{workload}-role"]["Statement"][0]["Condition"]["StringEquals"]
        subs = [v for k, v in cond.items() if k.endswith(":sub")]
        assert subs == [f"system:serviceaccount:mlops:mlops-{workload}"]


def _default_tags(r) -> dict:
    (provider,) = r.of_type("pulumi:providers:aws")
    return provider.inputs["defaultTags"]["tags"]


def test_dev_expires_prod_does_not(aws_dev, aws_prod) -> None:
    dev, prod = _default_tags(aws_dev), _default_tags(aws_prod)
    assert dev["ttl-hours"] == "72" and {"owner", "stack"} <= set(dev)
    assert "ttl-hours" not in prod and prod["stack"] == "aws-prod"


def test_every_aws_resource_uses_the_tagging_provider(aws_dev) -> None:
    # default_tags only reach resources created through the provider that carries them
    assert len(aws_dev.of_type("pulumi:providers:aws")) == 1


def test_local_creates_no_cloud_resources(local) -> None:
    assert not [r for r in local.resources if r.type.startswith(("aws:", "pulumi:providers:aws"))]
    charts = {r.inputs["chart"]: r.inputs for r in local.of_type("kubernetes:helm.sh/v3:Release")}
    assert {"cloudnative-pg", "valkey", "seaweedfs", "kube-prometheus-stack"} <= set(charts)
    for chart in charts.values():
        assert chart["version"][0].isdigit() and chart["repositoryOpts"]["repo"].startswith(
            "https://"
        )


def test_helm_values_wire_generated_secrets(local) -> None:
    charts = {
        r.inputs["chart"]: r.inputs["values"]
        for r in local.of_type("kubernetes:helm.sh/v3:Release")
    }
    kps = charts["kube-prometheus-stack"]
    assert kps["grafana"]["admin"]["existingSecret"] == "grafana-admin"
    assert kps["grafana"]["sidecar"]["dashboards"]["label"] == "grafana_dashboard"
    assert kps["prometheus"]["prometheusSpec"]["ruleSelectorNilUsesHelmValues"] is False
    assert charts["valkey"]["auth"]["usersExistingSecret"] == "valkey-users"
    assert charts["seaweedfs"]["s3"]["existingConfigSecret"] == "seaweedfs-s3-config"
    assert "[secret]" not in json.dumps(charts), "secret values belong in Secrets, not values"
