"""What a destroyed stack left in the cloud, found by AWS's own listing rather than Pulumi's state.

Pulumi's state only knows what Pulumi created. The cluster creates more, and it outlives the
cluster and keeps billing: EBS volumes for PersistentVolumeClaims (a StatefulSet's claims are
not deleted with it, and once the cluster is gone nothing deletes their volumes) and load
balancers for Services. The StorageClass tags its volumes with the stack's tags
(``infra/platforms/aws.py``), so after ``pulumi destroy``:

1. orphaned volumes of the stack (tag ``stack=<name>``, status ``available``) are deleted,
   each snapshotted first when the stack is protected (production data is never just dropped);
2. the Resource Groups Tagging API lists everything still tagged ``stack=<name>`` or
   ``kubernetes.io/cluster/<cluster>``; snapshots kept on purpose (final snapshots, the ones of
   step 1) are reported as kept, anything else is a leftover the caller must not hide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# ARNs of these kinds are kept on purpose: they are the backups of what was deleted.
KEPT_KINDS = (":snapshot:", ":snapshot/", ":cluster-snapshot:")


@dataclass
class Cleanup:
    deleted_volumes: list[str] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)


def cluster_name(stack: str) -> str:
    """The EKS cluster of ``stack`` (``infra/platforms/aws.py`` names it so)."""
    return f"mlops-{stack}"


def orphan_volumes(ec2: Any, stack: str) -> list[str]:
    """Volumes tagged with ``stack`` that no instance uses any more."""
    filters = [
        {"Name": "tag:stack", "Values": [stack]},
        {"Name": "status", "Values": ["available"]},
    ]
    pages = ec2.get_paginator("describe_volumes").paginate(Filters=filters)
    return [v["VolumeId"] for page in pages for v in page["Volumes"]]


def tagged(tagging: Any, stack: str) -> list[str]:
    """ARNs of everything still tagged as belonging to ``stack`` or to its cluster."""
    arns: list[str] = []
    for tag_filter in (
        {"Key": "stack", "Values": [stack]},
        {"Key": f"kubernetes.io/cluster/{cluster_name(stack)}"},
    ):
        pages = tagging.get_paginator("get_resources").paginate(TagFilters=[tag_filter])
        arns += [r["ResourceARN"] for page in pages for r in page["ResourceTagMappingList"]]
    return sorted(set(arns))


def clean_up(
    session: Any, stack: str, *, snapshot_first: bool, out: Callable[[str], None] = print
) -> Cleanup:
    """Delete the stack's orphaned volumes (snapshot first if asked), then list what is left."""
    ec2 = session.client("ec2")
    result = Cleanup()
    for volume in orphan_volumes(ec2, stack):
        if snapshot_first:
            snapshot = ec2.create_snapshot(
                VolumeId=volume,
                Description=f"{stack}: volume {volume} before destroy",
                TagSpecifications=[
                    {"ResourceType": "snapshot", "Tags": [{"Key": "stack", "Value": stack}]}
                ],
            )["SnapshotId"]
            ec2.get_waiter("snapshot_completed").wait(
                SnapshotIds=[snapshot], WaiterConfig={"Delay": 15, "MaxAttempts": 120}
            )
            result.snapshots.append(snapshot)
            out(f"destroy: snapshot {snapshot} of volume {volume} kept")
        ec2.delete_volume(VolumeId=volume)
        result.deleted_volumes.append(volume)
        out(f"destroy: deleted orphaned volume {volume}")
    deleted = set(result.deleted_volumes)
    for arn in tagged(session.client("resourcegroupstaggingapi"), stack):
        if any(kind in arn for kind in KEPT_KINDS):
            result.kept.append(arn)
        elif arn.rsplit("/", 1)[-1] not in deleted:  # the listing lags behind deletions
            result.left.append(arn)
    return result
