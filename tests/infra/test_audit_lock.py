"""The governance audit log's bucket is versioned and under S3 Object Lock, per stack intent."""

from __future__ import annotations

import pytest

from contract.objectstore import AUDIT_BUCKET

LOCK = "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration"


@pytest.mark.parametrize(
    ("stack", "mode", "min_days"), [("aws_dev", "GOVERNANCE", 1), ("aws_prod", "COMPLIANCE", 365)]
)
def test_audit_bucket_is_versioned_and_locked(stack, mode, min_days, request) -> None:
    rendered = request.getfixturevalue(stack)
    buckets = {r.name: r for r in rendered.of_type("aws:s3/bucket:Bucket")}
    (audit_bucket,) = [b for name, b in buckets.items() if name.endswith(f"-{AUDIT_BUCKET}")]
    assert audit_bucket.inputs["objectLockEnabled"] is True
    others = [b for b in buckets.values() if b is not audit_bucket]
    assert others and not any(b.inputs.get("objectLockEnabled") for b in others)

    (lock,) = rendered.of_type(LOCK)
    retention = lock.inputs["rule"]["defaultRetention"]
    assert retention["mode"] == mode and retention["days"] >= min_days
    versioning = [
        v
        for v in rendered.of_type("aws:s3/bucketVersioning:BucketVersioning")
        if v.name == f"{audit_bucket.name}-versioning"
    ]
    assert versioning[0].inputs["versioningConfiguration"]["status"] == "Enabled"


def test_local_stack_has_no_object_lock(local) -> None:
    assert not local.of_type(LOCK)  # the in-cluster S3 stand-in has no Object Lock
