"""The pipeline's pushed series: names and labels from the contract, counters cumulative."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from contract import env
from ml import pipeline_metrics


class _Gateway(BaseHTTPRequestHandler):
    """A Pushgateway stand-in: remembers pushes, serves a fixed /metrics page."""

    pushes: ClassVar[list[tuple[str, str]]] = []
    page: ClassVar[str] = ""

    def do_GET(self):
        body = self.page.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_PUT(self):
        length = int(self.headers["Content-Length"])
        self.pushes.append((self.path, self.rfile.read(length).decode()))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def gateway(monkeypatch):
    _Gateway.pushes, _Gateway.page = [], ""
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv(env.PUSHGATEWAY_URL, f"127.0.0.1:{server.server_port}")
    yield _Gateway
    server.shutdown()


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_a_run_pushes_the_contract_series_under_its_pipeline(gateway):
    pipeline_metrics.push_run("train", "succeeded", "candidate_registered")

    [(path, body)] = gateway.pushes
    assert path == f"/metrics/job/{pipeline_metrics.PUSH_JOB}/pipeline/train"
    samples = _samples(body)
    runs = ("mlops_pipeline_runs_total", (("pipeline", "train"), ("status", "succeeded")))
    assert samples[runs] == 1
    assert samples[("mlops_model_promotions_total", (("decision", "candidate_registered"),))] == 1
    [(name, _)] = [k for k in samples if k[0].startswith("mlops_pipeline_last_success")]
    assert name == "mlops_pipeline_last_success_timestamp_seconds"


@pytest.mark.parametrize("status, expected", [("succeeded", 3), ("failed", 2)])
def test_counters_continue_from_what_the_gateway_holds(gateway, status, expected):
    gateway.page = (
        'mlops_pipeline_runs_total{job="mlops-pipeline",pipeline="retrain",status="succeeded"} 2\n'
        'mlops_pipeline_runs_total{job="mlops-pipeline",pipeline="train",status="succeeded"} 9\n'
    )
    pipeline_metrics.push_run("retrain", status)

    samples = _samples(gateway.pushes[0][1])
    key = ("mlops_pipeline_runs_total", (("pipeline", "retrain"), ("status", "succeeded")))
    assert samples[key] == expected


def test_materialization_pushes_one_gauge_per_view(gateway):
    pipeline_metrics.push_materialized({"customer_profile": 1.5e9, "customer_transactions": 2e9})

    samples = _samples(gateway.pushes[0][1])
    name = "mlops_feature_materialized_until_timestamp_seconds"
    assert samples[(name, (("feature_view", "customer_profile"),))] == 1.5e9


def test_nothing_is_pushed_without_a_gateway(monkeypatch):
    monkeypatch.delenv(env.PUSHGATEWAY_URL, raising=False)
    pipeline_metrics.push_run("train", "succeeded")  # would raise if it tried to connect
