"""`mlops monitor drift` in the cluster: windows from the reports bucket (moto's S3 server)."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from contract import env
from contract.objectstore import (
    DRIFT_LATEST_KEY,
    DRIFT_PREFIX,
    PREDICTIONS_PREFIX,
    REFERENCE_KEY,
    RETRAIN_TRIGGER_KEY,
)
from ml.cli import monitor
from ml.data.generate import FEATURE_COLUMNS, Drift, sample_window
from ml.errors import UserError
from ml.monitor.windows import WindowConfig, current, parse_batch
from ml.objectstore import Bucket

NOW = datetime.now(UTC)


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
def reports(s3_endpoint, monkeypatch, request) -> Bucket:
    """An empty reports bucket, named after the test, configured as the pod's would be."""
    import boto3

    from ml import objectstore

    name = f"reports-{request.node.name.lower().replace('_', '-')}"[:60].strip("-")
    name = "".join(c if c.isalnum() or c == "-" else "-" for c in name)
    for var, value in {
        env.AWS_ENDPOINT_URL_S3: s3_endpoint,
        env.AWS_ACCESS_KEY_ID: "testing",
        env.AWS_SECRET_ACCESS_KEY: "testing",
        env.AWS_DEFAULT_REGION: "us-east-1",
        env.AWS_REGION: "us-east-1",
        env.bucket("reports"): name,
    }.items():
        monkeypatch.setenv(var, value)
    objectstore._client.cache_clear()
    boto3.client("s3").create_bucket(Bucket=name)
    yield Bucket(name)
    objectstore._client.cache_clear()


def _scored(frame, seed: int):
    scores = np.random.default_rng(seed).uniform(0, 1, len(frame))
    return frame.assign(score=scores, prediction=(scores >= 0.5).astype("int64"))


def _records(frame, start: datetime, **overrides) -> list[dict]:
    """Prediction-log records (the columns of ml.serve.prediction_log), one second apart."""
    return [
        {
            "request_id": f"{start.timestamp()}-{i}",
            "timestamp": (start + timedelta(seconds=i)).isoformat(),
            "customer_id": int(row["customer_id"]),
            "application_id": None,
            "variant": "champion",
            "model_version": "1",
            "features": {c: row[c] for c in FEATURE_COLUMNS},
            "score": float(row["score"]),
            "prediction": int(row["prediction"]),
            "latency_ms": 3.0,
            "shadow": False,
            "error": None,
            **overrides,
        }
        for i, row in enumerate(frame.to_dict("records"))
    ]


def _ship(reports: Bucket, name: str, records: list[dict]) -> None:
    body = "\n".join(json.dumps(r, default=str) for r in records) + "\n"
    reports.put_bytes(f"{PREDICTIONS_PREFIX}{name}.jsonl.gz", gzip.compress(body.encode()))


def test_current_window_keeps_only_recent_live_answers(reports):
    frame = _scored(sample_window(40, seed=1), seed=1)
    _ship(reports, "1-old", _records(frame[:10], NOW - timedelta(hours=3)))
    _ship(reports, "2-live", _records(frame[10:20], NOW - timedelta(minutes=5)))
    _ship(reports, "3-shadow", _records(frame[20:30], NOW, shadow=True, variant="challenger"))
    _ship(reports, "4-error", _records(frame[30:], NOW, error="feature store down"))

    window = current(reports, WindowConfig(max_records=8, max_age_s=3600), now=NOW)

    assert len(window) == 8  # the newest 8 of the 10 live, recent ones
    assert set(FEATURE_COLUMNS) <= set(window.columns)
    assert window["timestamp"].is_monotonic_increasing
    assert window["score"].tolist() == frame["score"][12:20].tolist()


def test_a_torn_line_is_skipped():
    body = b'{"score": 1}\n{"score": 2}\n{"sco'
    assert parse_batch(gzip.compress(body)) == [{"score": 1}, {"score": 2}]


def _app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(monitor.app, name="monitor")
    return root


@pytest.mark.parametrize(("drift", "triggered"), [(None, False), (Drift("covariate", 1.0), True)])
def test_drift_job_reads_and_writes_the_reports_bucket(reports, drift, triggered):
    reports.put_parquet(REFERENCE_KEY, _scored(sample_window(1500, seed=21), seed=2))
    live = _scored(sample_window(600, seed=22, drift=drift), seed=3)
    _ship(reports, "batch", _records(live, NOW - timedelta(minutes=20)))

    result = CliRunner().invoke(_app(), ["monitor", "drift"])

    assert result.exit_code == 0, result.output
    latest = json.loads(reports.get_bytes(DRIFT_LATEST_KEY))
    assert latest["dataset_drift"] is triggered and latest["rows"] == 600
    assert len([k for k in reports.keys(DRIFT_PREFIX) if k != DRIFT_LATEST_KEY]) == 1
    assert reports.exists(RETRAIN_TRIGGER_KEY) is triggered
    if triggered:
        trigger = json.loads(reports.get_bytes(RETRAIN_TRIGGER_KEY))
        assert trigger["reason"].startswith("drift monitor: DRIFT") and trigger["time"]


def test_too_little_traffic_is_no_verdict(reports, monkeypatch):
    reports.put_parquet(REFERENCE_KEY, _scored(sample_window(500, seed=21), seed=2))
    _ship(reports, "batch", _records(_scored(sample_window(50, seed=4), seed=4), NOW))

    pushed = []
    monkeypatch.setattr(
        "prometheus_client.pushadd_to_gateway",
        lambda gateway, job, registry, timeout: pushed.append(
            {m.name for m in registry.collect()}
        ),
    )
    args = ["monitor", "drift", "--min-records", "100", "--push-gateway", "pgw:9091"]

    result = CliRunner().invoke(_app(), args)

    assert result.exit_code == 0, result.output
    assert result.output.startswith("not enough traffic: 50 live predictions")
    assert not reports.exists(DRIFT_LATEST_KEY)
    assert pushed == [{"mlops_monitor_last_run_timestamp_seconds"}]  # a heartbeat, no verdict


def test_no_files_and_no_bucket_is_a_user_error(monkeypatch):
    monkeypatch.delenv(env.bucket("reports"), raising=False)
    result = CliRunner().invoke(_app(), ["monitor", "drift"])
    assert isinstance(result.exception, UserError)
    assert env.bucket("reports") in result.exception.line()


@pytest.fixture
def features(reports, monkeypatch) -> Bucket:
    import boto3

    name = reports.name.replace("reports-", "features-")
    boto3.client("s3").create_bucket(Bucket=name)
    monkeypatch.setenv(env.bucket("features"), name)
    return Bucket(name)


def test_quality_gauge_from_outcomes_known_in_the_offline_store(reports, features, monkeypatch):
    from contract.objectstore import offline_table_key
    from ml.monitor import push

    reports.put_parquet(REFERENCE_KEY, _scored(sample_window(1000, seed=21), seed=2))
    live = _scored(sample_window(400, seed=22), seed=3)
    records = _records(live, NOW - timedelta(minutes=20))
    for record, application in zip(records, live["application_id"], strict=True):
        record["application_id"] = int(application)
    _ship(reports, "batch", records)
    outcomes = live[["application_id", "defaulted", "label_timestamp"]].copy()
    outcomes["label_timestamp"] = [NOW - timedelta(days=1)] * 300 + [NOW + timedelta(days=9)] * 100
    features.put_parquet(offline_table_key("applications"), outcomes)
    seen = []
    monkeypatch.setattr(push, "set_gauges", lambda _result, quality: seen.append(quality))

    result = CliRunner().invoke(_app(), ["monitor", "drift"])

    assert result.exit_code == 0, result.output
    assert seen[0] is not None and seen[0].n == 300  # only outcomes known by now


def test_a_feature_nobody_had_is_numeric_nan_and_drift_runs(reports):
    """JSON nulls in every row must not make an object column the drift tests choke on."""
    from ml.monitor.drift import DriftConfig, detect

    frame = _scored(sample_window(300, seed=3), seed=3)
    records = _records(frame, NOW - timedelta(minutes=5))
    empty = FEATURE_COLUMNS[0]
    for record in records:
        record["features"][empty] = None
    _ship(reports, "1-live", records)

    window = current(reports, WindowConfig(max_records=300, max_age_s=3600), now=NOW)

    assert window[empty].dtype.kind == "f" and window[empty].isna().all()
    detect(_scored(sample_window(300, seed=4), seed=4), window, DriftConfig())
