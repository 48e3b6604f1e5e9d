"""The deduplicated artifact store (ml.experiments.dedup_store) behind a real ``mlflow server``
(the embedded mode's own command), directly on a folder, and on S3 (moto's server)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from sklearn.linear_model import LogisticRegression

from ml.errors import UserError
from ml.experiments.dedup_bench import _timing
from ml.experiments.dedup_store import (
    SCHEMES,
    DedupArtifactRepository,
    collect_garbage,
    store_bytes,
    unused_blobs,
)
from ml.serve.server import free_port
from ml.tracking import mlflow_server
from tests.conftest import mlflow_pointed_at

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_monitor_windows import s3_endpoint
except ImportError:
    from tests.unit.test_monitor_windows import s3_endpoint  # noqa: F401

MANIFEST = {"training_set_sha256": "ab" * 32, "rows": 1000}


def _blobs(root: Path) -> list[Path]:
    return [p for p in (root / "blobs").rglob("*") if p.is_file() and ".staging" not in p.parts]


def test_the_server_stores_files_many_runs_log_once_and_serves_them_unchanged(tmp_path):
    x = np.random.default_rng(1).random((60, 3))
    y = (x[:, 0] > 0.5).astype(int)
    home = tmp_path / "mlflow"
    with mlflow_server(home, free_port()) as uri, mlflow_pointed_at(uri):
        mlflow.set_experiment("dedup")
        runs = []
        for i in range(3):
            with mlflow.start_run() as run:
                mlflow.log_dict(MANIFEST, "manifest/training_set.json")  # same in every run
                mlflow.log_text(f"trial {i}", "notes.txt")  # different in every run
                model = mlflow.sklearn.log_model(
                    LogisticRegression(C=1.0 + i).fit(x, y), name="model", input_example=x[:2]
                )
            runs.append((run.info.run_id, model.model_uri, f"trial {i}"))

        client = MlflowClient()
        for run_id, model_uri, note in runs:
            listed = {f.path: f.file_size for f in client.list_artifacts(run_id, "manifest")}
            manifest = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path="manifest/training_set.json"
                )
            ).read_bytes()
            assert json.loads(manifest) == MANIFEST
            assert listed == {"manifest/training_set.json": len(manifest)}
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="notes.txt")
            assert Path(path).read_text() == note
            loaded = mlflow.sklearn.load_model(model_uri)
            assert loaded.predict_proba(x).shape == (60, 2)

    store = home / "artifacts"
    pointers = list((store / "refs").rglob("training_set.json"))
    assert len(pointers) == 3
    blobs = {json.loads(p.read_text())["blob"] for p in pointers}
    assert len(blobs) == 1, "the manifest all three runs logged is stored once"
    assert (store / blobs.pop()).read_bytes() == manifest  # small: stored as is
    # Each model logs the same environment files: one blob each, three pointers.
    requirements = {json.loads(p.read_text())["blob"] for p in store.rglob("requirements.txt")}
    assert len(requirements) == 1
    pointers = [p for p in (store / "refs").rglob("*") if p.is_file()]
    logical = sum(json.loads(p.read_text())["size"] for p in pointers)
    figures = store_bytes(f"cas+file://{store}")
    assert figures["files"] == len(pointers)
    assert figures["blob_bytes"] == sum(p.stat().st_size for p in _blobs(store)) < logical


def test_unreferenced_blobs_wait_out_the_grace_period_then_go(tmp_path):
    uri = f"cas+file://{tmp_path / 'store'}"
    repo = DedupArtifactRepository(uri)
    shared, own = tmp_path / "env.yaml", tmp_path / "model.bin"
    shared.write_text("python: 3.11\n")
    own.write_bytes(b"\x00weights-of-run-1")
    for run in ("1/run1/artifacts", "1/run2/artifacts"):
        repo.log_artifact(str(shared), run)
    repo.log_artifact(str(own), "1/run1/artifacts")
    assert collect_garbage(uri, grace_s=3600, now=1000.0).deleted == 0

    repo.delete_artifacts("1/run1/artifacts")  # what `mlflow gc` does through the proxy
    first = collect_garbage(uri, grace_s=3600, now=2000.0)
    assert (first.blobs, first.referenced, first.deleted, first.pending) == (2, 1, 0, 1)
    assert list(unused_blobs(uri).values()) == [2000.0]
    early = collect_garbage(uri, grace_s=3600, now=2000.0 + 3599)
    assert early.deleted == 0, "still inside the grace period"
    late = collect_garbage(uri, grace_s=3600, now=2000.0 + 3600)
    assert (late.deleted, late.deleted_bytes, late.pending) == (1, own.stat().st_size, 0)
    assert unused_blobs(uri) == {}

    target = tmp_path / "out"
    target.mkdir()
    got = repo.download_artifacts("1/run2/artifacts/env.yaml", str(target))
    assert Path(got).read_text() == "python: 3.11\n"
    with pytest.raises(MlflowException, match="No such artifact"):
        repo.download_artifacts("1/run1/artifacts/model.bin", str(target))


def test_a_blob_referenced_again_before_the_grace_period_ends_is_kept(tmp_path):
    uri = f"cas+file://{tmp_path / 'store'}"
    repo = DedupArtifactRepository(uri)
    file = tmp_path / "input_example.json"
    file.write_text('{"x": 1}')
    repo.log_artifact(str(file), "1/a/artifacts")
    repo.delete_artifacts("1/a/artifacts")
    assert collect_garbage(uri, grace_s=60, now=0.0).pending == 1
    repo.log_artifact(str(file), "1/b/artifacts")  # same content logged by a new run
    report = collect_garbage(uri, grace_s=60, now=120.0)
    assert (report.deleted, report.pending, report.referenced) == (0, 0, 1)


def test_compressible_content_is_stored_compressed_and_the_rest_as_is(tmp_path):
    repo = DedupArtifactRepository(f"cas+file://{tmp_path / 'store'}")
    source = tmp_path / "logged"
    source.mkdir()
    text, noise = source / "conda.yaml", source / "weights.bin"
    text.write_text("dependencies:\n" + "  - numpy==2.0\n" * 400)
    noise.write_bytes(os.urandom(50_000))
    repo.log_artifacts(str(source), "1/r/artifacts")

    assert repo.get_local_path("1/r/artifacts/conda.yaml") is None  # must be decompressed
    sent = repo.get_local_path("1/r/artifacts/weights.bin")  # sent as stored
    assert sent.endswith(".bin") and Path(sent).read_bytes() == noise.read_bytes()
    sizes = {f.path: f.file_size for f in repo.list_artifacts("1/r/artifacts")}
    assert sizes["1/r/artifacts/conda.yaml"] == text.stat().st_size
    out = tmp_path / "out"
    out.mkdir()
    got = repo.download_artifacts("1/r/artifacts/conda.yaml", str(out))
    assert Path(got).read_bytes() == text.read_bytes()
    stored = {p.name for p in _blobs(tmp_path / "store")}
    assert sum(name.endswith(".yaml.zlib") for name in stored) == 1
    assert sum(name.endswith(".bin") for name in stored) == 1


def test_paths_that_leave_the_store_are_refused(tmp_path):
    repo = DedupArtifactRepository(f"cas+file://{tmp_path / 'store'}")
    file = tmp_path / "f.txt"
    file.write_text("x")
    with pytest.raises(MlflowException, match=r"'\.\.'"):
        repo.log_artifact(str(file), "1/../../outside")


def test_an_s3_store_deduplicates_lists_loads_and_collects(tmp_path, s3_endpoint, monkeypatch):
    import boto3

    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", endpoint_url=s3_endpoint)
    s3.create_bucket(Bucket="artifacts-dedup")
    uri = "cas+s3://artifacts-dedup/mlflow"
    repo = DedupArtifactRepository(uri)
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "conda.yaml").write_text("dependencies: [python=3.11]\n")
    (folder / "sub" / "weights.bin").write_bytes(b"\x01" * 100)
    repo.log_artifacts(str(folder), "1/r1/artifacts/model")
    repo.log_artifacts(str(folder), "1/r2/artifacts/model")

    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="artifacts-dedup")["Contents"]]
    assert sum("/blobs/" in k for k in keys) == 2, keys
    assert sum("/refs/" in k for k in keys) == 4, keys
    listed = {(f.path, f.is_dir, f.file_size) for f in repo.list_artifacts("1/r2/artifacts/model")}
    assert listed == {
        ("1/r2/artifacts/model/conda.yaml", False, 28),
        ("1/r2/artifacts/model/sub", True, None),
    }
    (tmp_path / "out").mkdir()
    out = Path(repo.download_artifacts("1/r2/artifacts/model", str(tmp_path / "out")))
    assert (out / "sub" / "weights.bin").read_bytes() == b"\x01" * 100

    stored = sum(o["Size"] for o in s3.list_objects_v2(Bucket="artifacts-dedup")["Contents"]
                 if "/blobs/" in o["Key"])  # fmt: skip
    repo.delete_artifacts("1/r1/artifacts")
    assert collect_garbage(uri, grace_s=0).deleted == 0, "r2 still references both blobs"
    repo.delete_artifacts("1/r2/artifacts")
    report = collect_garbage(uri, grace_s=0)
    assert (report.deleted, report.deleted_bytes) == (2, stored)


def test_the_bench_ratio_is_dedup_over_default_per_run():
    timing = _timing([0.10, 0.20, 0.40], [0.05, 0.20, 0.80])
    assert timing["ratio_dedup_over_default"] == {"min": 0.5, "median": 1.0, "max": 2.0}
    assert (timing["default_median_ms"], timing["dedup_median_ms"]) == (200.0, 200.0)


def test_the_gc_command_collects_a_store_and_refuses_what_is_not_one(tmp_path):
    from typer.testing import CliRunner

    from ml.cli.main import app

    uri = f"cas+file://{tmp_path / 'store'}"
    repo = DedupArtifactRepository(uri)
    file = tmp_path / "model.bin"
    file.write_bytes(b"unused soon")
    repo.log_artifact(str(file), "1/r/artifacts")
    repo.delete_artifacts("1/r/artifacts")

    result = CliRunner().invoke(app, ["experiments", "gc", "--store", uri, "--grace-hours", "0",
                                      "--json"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {
        "store": uri, "blobs": 1, "referenced": 0, "deleted": 1, "deleted_bytes": 11,
        "pending": 0,
    }  # fmt: skip
    # UserError: `mlops` (ml.cli.main.run) prints it as one line and exits with 2.
    plain = CliRunner().invoke(app, ["experiments", "gc", "--store", str(tmp_path)])
    assert isinstance(plain.exception, UserError)
    assert "not a deduplicated store" in str(plain.exception)
    missing = CliRunner().invoke(app, ["experiments", "gc", "--store", "cas+file:///no/such"])
    assert isinstance(missing.exception, UserError)
    assert "no artifact store at /no/such" in str(missing.exception)


def test_the_installed_entry_points_name_every_scheme_of_the_store():
    """The server finds the store only through pyproject's entry points: one per scheme."""
    from importlib.metadata import entry_points

    found = {e.name: e.value for e in entry_points(group="mlflow.artifact_repository")}
    assert found == dict.fromkeys(SCHEMES, "ml.experiments.dedup_store:DedupArtifactRepository")
