"""The feature views read the object store's offline folders when a features bucket is set."""

from __future__ import annotations

import pytest

from contract import env
from ml.features import definitions


@pytest.mark.parametrize("store_type", ["file", "postgres"])
def test_without_a_bucket_sources_are_unchanged(monkeypatch, store_type):
    monkeypatch.delenv(env.bucket("features"), raising=False)
    views = [o for o in definitions.objects_for(store_type) if hasattr(o, "batch_source")]
    kinds = {type(v.batch_source).__name__ for v in views if v.batch_source is not None}
    assert kinds == {"FileSource" if store_type == "file" else "PostgreSQLSource"}
    if store_type == "file":
        assert {v.batch_source.path for v in views} == {
            "data/customer_profile.parquet",
            "data/customer_transactions.parquet",
        }


def test_with_a_bucket_file_sources_read_the_offline_folders(monkeypatch):
    monkeypatch.setenv(env.bucket("features"), "features-x")
    monkeypatch.setenv(env.AWS_ENDPOINT_URL_S3, "http://s3.local:8333")
    objects = definitions.objects_for("file")
    views = {o.name: o for o in objects if o in objects and hasattr(o, "batch_source")}
    for name in ("customer_profile", "customer_transactions"):
        source = views[name].batch_source
        assert source.path == f"s3://features-x/offline/{name}/"
        assert source.s3_endpoint_override == "http://s3.local:8333"
        assert source.name == f"{name}_source"  # same names as everywhere else
    # the module-level definitions are untouched (the demo keeps its local files)
    assert definitions.customer_profile.batch_source.path == "data/customer_profile.parquet"
