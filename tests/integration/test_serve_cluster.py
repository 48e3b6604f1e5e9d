"""The server as a pod runs it: no champion at start, alias moves without restart, S3 logs.

A real BentoML server (2 workers) for a model name that has no ``champion`` yet, with a reports
bucket on moto's S3 server: it must answer /livez, refuse /readyz (503) until governance's alias
exists, then serve it, follow the alias to a new version in the same processes, count errors,
and leave every logged prediction in the bucket after a clean shutdown.
"""

import gzip
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow import MlflowClient

from contract import env
from contract.objectstore import PREDICTIONS_PREFIX
from ml.serve.models import GOVERNANCE_TAG
from ml.serve.server import start_server
from ml.serve.traffic import TrafficPolicy

MODEL = "serve-fresh"
POLICY = TrafficPolicy(
    model_name=MODEL,
    salt="fresh",
    variants={
        "champion": {"model": "champion", "weight": 1},
        "challenger": {"model": "challenger", "weight": 1},  # never set: its share moves over
    },
    shadows=[{"name": "shadow", "model": "shadow"}],  # never set: skipped
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def reports():
    """A reports bucket on moto's S3 server; yields (server env, boto3 client, bucket)."""
    import boto3

    port = _free_port()
    moto = Path(sys.executable).with_name("moto_server")
    proc = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail("moto_server did not start within 30 s")
            time.sleep(0.2)
    variables = {
        env.AWS_ENDPOINT_URL_S3: f"http://127.0.0.1:{port}",
        env.AWS_ACCESS_KEY_ID: "testing",
        env.AWS_SECRET_ACCESS_KEY: "testing",
        env.AWS_DEFAULT_REGION: "us-east-1",
        env.bucket("reports"): "reports",
        env.POD_NAME: "serving-abc12",
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=variables[env.AWS_ENDPOINT_URL_S3],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket="reports")
    yield variables, s3
    proc.terminate()
    proc.wait(timeout=10)


def _versions(platform) -> list[str]:
    client = MlflowClient()
    run_id = platform.outcome.winner.run_id
    versions = [str(mlflow.register_model(f"runs:/{run_id}/model", MODEL).version) for _ in "ab"]
    for version in versions:  # approved by governance (the tag is what serving checks)
        client.set_model_version_tag(MODEL, version, GOVERNANCE_TAG, "approved")
    return versions


def _until(check, timeout_s=60.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.3)
    return False


def _app(platform, i):
    row = platform.training_set.iloc[i]
    return {
        "customer_id": int(row["customer_id"]),
        "loan_amount": float(row["loan_amount"]),
        "term_months": int(row["term_months"]),
        "application_id": int(row["application_id"]),
    }


def test_pod_lifecycle_without_champion_alias_swap_and_shipped_logs(
    trained_platform, reports, tmp_path
):
    variables, s3 = reports
    first, second = _versions(trained_platform)
    server_env = {
        **variables,
        "MLOPS_SERVING_WORKERS": "2",
        "MLOPS_MODEL_POLL_S": "0.5",
        "MLOPS_LOG_BATCH_RECORDS": "40",
        "MLOPS_LOG_BATCH_S": "2",
    }
    client = MlflowClient()
    answered = 0
    with (
        start_server(trained_platform.settings, POLICY, env=server_env, wait_for="/livez") as url,
        httpx.Client(base_url=url, timeout=10) as http,
    ):
        ready = http.get("/readyz")
        assert ready.status_code == 503, ready.text
        assert http.post("/predict", json=_app(trained_platform, 0)).status_code == 503

        client.set_registered_model_alias(MODEL, "champion", first)
        assert _until(lambda: http.get("/readyz").status_code == 200), "never became ready"

        def serves(version):
            nonlocal answered
            bodies = [http.post("/predict", json=_app(trained_platform, i)) for i in range(20)]
            answered += sum(b.status_code == 200 for b in bodies)
            ok = [b.json() for b in bodies if b.status_code == 200]
            return len(ok) == 20 and {(b["variant"], b["model_version"]) for b in ok} == {
                ("champion", version)
            }

        assert _until(lambda: serves(first)), "both workers should serve the first champion"
        client.set_registered_model_alias(MODEL, "champion", second)
        assert _until(lambda: serves(second)), "the new champion was not picked up live"

        unknown = {"customer_id": 987654321, "loan_amount": 1.0, "term_months": 12}
        assert http.post("/predict", json=unknown).status_code == 404
        metrics = http.get("/metrics").text
        assert 'mlops_request_errors_total{code="404",variant="champion"}' in metrics
        skipped = [m for m in metrics.splitlines() if m.startswith("mlops_variant_available{")]
        assert any('variant="challenger"' in m and m.endswith(" 0.0") for m in skipped), skipped
        assert "mlops_online_features_missing_total" in metrics

    keys = [
        o["Key"] for o in s3.list_objects_v2(Bucket="reports").get("Contents", [])
    ]  # the clean shutdown above shipped what was left
    assert keys and all(k.startswith(PREDICTIONS_PREFIX) and k.endswith(".jsonl.gz") for k in keys)
    records = [
        json.loads(line)
        for key in keys
        for line in gzip.decompress(
            s3.get_object(Bucket="reports", Key=key)["Body"].read()
        ).splitlines()
    ]
    live = [r for r in records if not r["shadow"]]
    assert len(live) == answered and all(r["application_id"] is not None for r in live)
    assert not (trained_platform.settings.build / "serving" / "spool").exists() or not any(
        (trained_platform.settings.build / "serving" / "spool").rglob("*.jsonl")
    )
