"""After destroy, what the cluster created outside Pulumi is found by tag and removed (moto)."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from ml.errors import UserError
from scripts import destroy, leftovers

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_scripts_support import FakeStack
except ImportError:  # pragma: no cover
    from tests.unit.test_scripts_support import FakeStack

REGION = "eu-west-1"


@pytest.fixture
def aws(monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    with mock_aws():
        yield boto3.Session(region_name=REGION)


def _volume(session, stack: str) -> str:
    tags = [{"ResourceType": "volume", "Tags": [{"Key": "stack", "Value": stack}]}]
    return session.client("ec2").create_volume(
        AvailabilityZone=f"{REGION}a", Size=20, TagSpecifications=tags
    )["VolumeId"]


def test_orphaned_volumes_are_deleted_and_only_this_stacks(aws) -> None:
    mine, other = _volume(aws, "aws-dev"), _volume(aws, "aws-prod")
    result = leftovers.clean_up(aws, "aws-dev", snapshot_first=False, out=lambda _l: None)
    assert result.deleted_volumes == [mine] and result.snapshots == [] and result.left == []
    remaining = [v["VolumeId"] for v in aws.client("ec2").describe_volumes()["Volumes"]]
    assert remaining == [other]


def test_a_protected_stacks_volumes_are_snapshotted_before_deletion(aws) -> None:
    volume = _volume(aws, "aws-prod")
    result = leftovers.clean_up(aws, "aws-prod", snapshot_first=True, out=lambda _l: None)
    (snapshot,) = aws.client("ec2").describe_snapshots(
        Filters=[{"Name": "volume-id", "Values": [volume]}]
    )["Snapshots"]
    assert snapshot["VolumeId"] == volume and result.snapshots == [snapshot["SnapshotId"]]
    assert result.kept == [f"arn:aws:ec2:{REGION}:123456789012:snapshot/{snapshot['SnapshotId']}"]


def test_anything_else_tagged_with_the_stack_is_a_leftover(aws) -> None:
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(
        Resources=[vpc], Tags=[{"Key": "kubernetes.io/cluster/mlops-aws-dev", "Value": "owned"}]
    )
    result = leftovers.clean_up(aws, "aws-dev", snapshot_first=False, out=lambda _l: None)
    assert result.left == [f"arn:aws:ec2:{REGION}:123456789012:vpc/{vpc}"]


def test_destroy_fails_while_the_cloud_still_holds_the_stack(aws, tmp_path: Path) -> None:
    _volume(aws, "aws-dev")
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    ec2.create_tags(Resources=[vpc], Tags=[{"Key": "stack", "Value": "aws-dev"}])
    stack = FakeStack("aws-dev", config={"aws:region": REGION})
    lines: list[str] = []
    with pytest.raises(UserError, match="1 resources tagged stack=aws-dev remain"):
        destroy.destroy(
            stack,
            allow_protected=False,
            exporter=None,
            export_dir=tmp_path,
            sweeper=destroy.aws_sweeper,
            out=lines.append,
        )
    assert any("deleted orphaned volume" in line for line in lines)
    assert not any("nothing billable is left" in line for line in lines)
