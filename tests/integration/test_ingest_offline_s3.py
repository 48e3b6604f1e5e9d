"""The cluster's data path on a real S3 API (moto's server): landing → ingest → Feast on S3.

Checks that ingestion files every row exactly once (accepted + quarantined = received), is
idempotent, and that Feast 0.67's file offline store reads the ingested ``s3://`` folders
(several batches, a custom endpoint, static keys) for point-in-time joins and materialization.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from contract import env
from contract import objectstore as layout
from ml.data import with_bad_rows
from ml.features import store as feature_store
from ml.features.reference import point_in_time_reference
from ml.ingest import (
    ingest_pending,
    pending_batches,
    read_offline_table,
    upstream_batch,
    write_landing_batch,
)
from ml.objectstore import Bucket
from ml.pipeline import labelled_entities

NOW = pd.Timestamp.now(tz="UTC").floor("h")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint():
    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto_server did not start within 30 s")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def features(s3_endpoint, monkeypatch, request) -> Bucket:
    import boto3

    from ml import objectstore

    name = f"features-{request.node.name.lower().replace('_', '-')[:40]}"
    for var, value in {
        env.AWS_ENDPOINT_URL_S3: s3_endpoint,
        env.AWS_ACCESS_KEY_ID: "testing",
        env.AWS_SECRET_ACCESS_KEY: "testing",
        env.AWS_DEFAULT_REGION: "us-east-1",
        env.AWS_REGION: "us-east-1",
        env.bucket("features"): name,
    }.items():
        monkeypatch.setenv(var, value)
    objectstore._client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=name)
    yield Bucket(name)
    objectstore._client.cache_clear()


def _batch(number: int, days: int = 120):
    return upstream_batch(number, NOW, days=days, n_customers=150, seed=5)


def test_ingest_files_every_row_once_and_is_idempotent(features):
    dataset, bad = with_bad_rows(_batch(1), rate=0.01, seed=1)
    write_landing_batch(features, "b1", dataset.tables())

    counts = {c.table: c for c in ingest_pending(features)}

    assert set(counts) == set(dataset.tables())
    for table, frame in dataset.tables().items():
        c = counts[table]
        assert c.accepted + c.quarantined == c.received == len(frame)
        assert c.quarantined == bad.get(table, 0)
        assert len(read_offline_table(features, table)) == c.accepted
    assert pending_batches(features) == []
    assert list(features.keys(layout.LANDING_PREFIX)) == []
    assert len(list(features.keys(f"{layout.PROCESSED_PREFIX}b1/"))) == 4
    assert ingest_pending(features) == []  # nothing pending: a second run changes nothing
    features.put_bytes(
        "landing/b1/customers.parquet", features.get_bytes("processed/b1/customers.parquet")
    )
    ingest_pending(features)  # a re-delivered batch replaces its rows, never duplicates them
    assert len(read_offline_table(features, "customers")) == counts["customers"].accepted


def test_feast_reads_the_s3_offline_folders(features, tmp_path):
    first, second = _batch(1), _batch(2)
    for batch_id, dataset in (("b1", first), ("b2", second)):
        write_landing_batch(features, batch_id, dataset.tables())
    ingest_pending(features)
    repo = feature_store.prepare_repo(tmp_path / "repo")
    store = feature_store.open_store(repo)
    feature_store.apply(store)
    source = store.get_feature_view("customer_profile").batch_source
    assert source.path == f"s3://{features.name}/offline/customer_profile/"

    entities = labelled_entities(read_offline_table(features, "applications"))
    joined = feature_store.training_set(store, entities, "credit_v1")
    sources = {
        t: read_offline_table(features, t) for t in ("customer_profile", "customer_transactions")
    }
    expected = point_in_time_reference(entities, sources)
    assert len(joined) == len(entities) > 0
    assert joined["customer_id"].nunique() > 150  # both batches' customers
    for column in ("income", "utilization", "late_payments_90d"):
        np.testing.assert_allclose(
            joined[column].astype(float), expected[column].astype(float), err_msg=column
        )

    until = feature_store.materialize_incremental(store, NOW.to_pydatetime())
    assert set(until) == {"customer_profile", "customer_transactions"}
    recent = second.customers["customer_id"].head(5).tolist()
    online = store.get_online_features(
        features=["customer_profile:income"], entity_rows=[{"customer_id": c} for c in recent]
    ).to_df()
    assert online["income"].notna().all()


def test_a_late_batch_older_than_the_last_materialization_reaches_the_online_store(
    features, tmp_path
):
    """Incremental materialization starts where the last run ended; a batch delivered after
    that with older event times (the e2e's labelled batch 2) was never loaded, and its
    customers were 404s. Ingestion leaves a watermark that the next run loads from."""
    from typer.testing import CliRunner

    from contract.objectstore import MATERIALIZE_FROM_KEY
    from ml.cli.features import app

    repo = feature_store.prepare_repo(tmp_path / "repo")
    feature_store.apply(feature_store.open_store(repo))
    runner = CliRunner()
    write_landing_batch(features, "b1", _batch(1, days=30).tables())
    ingest_pending(features)
    assert runner.invoke(app, ["materialize", "--repo", str(repo)]).exit_code == 0
    assert not features.exists(MATERIALIZE_FROM_KEY)  # consumed

    late = upstream_batch(2, NOW - pd.Timedelta(days=20), days=60, n_customers=150, seed=5)
    write_landing_batch(features, "b2", late.tables())
    ingest_pending(features)
    assert features.exists(MATERIALIZE_FROM_KEY)
    result = runner.invoke(app, ["materialize", "--repo", str(repo)])
    assert result.exit_code == 0, result.output
    assert "backfill" in result.output and not features.exists(MATERIALIZE_FROM_KEY)
    store = feature_store.open_store(repo)
    rows = [{"customer_id": c} for c in late.customers["customer_id"].head(5)]
    online = store.get_online_features(
        features=["customer_profile:income"], entity_rows=rows
    ).to_df()
    assert online["income"].notna().all()
