"""Canary automation on real prediction-log files: rollback, advance, hold, complete."""

import json
from datetime import UTC, datetime

import pytest

from ml.serve.prediction_log import PredictionLog
from ml.serve.rollout import step_rollout
from ml.serve.traffic import TrafficPolicy, load_policy, save_policy


def _write_log(path, variant, n, errors=0, latency_ms=5.0):
    log = PredictionLog(path)
    now = datetime.now(UTC).isoformat()
    for i in range(n):
        failed = i < errors
        log.write(
            {
                "request_id": f"{variant}-{i}",
                "timestamp": now,
                "customer_id": 1000 + i,
                "application_id": None,
                "variant": variant,
                "model_version": "2",
                "features": {},
                "score": None if failed else 0.1,
                "prediction": None if failed else 0,
                "latency_ms": latency_ms,
                "shadow": False,
                "error": "RuntimeError: boom" if failed else None,
            }
        )
    log.close()


@pytest.fixture
def files(tmp_path):
    policy = TrafficPolicy(
        salt="s",
        variants={
            "champion": {"model": "champion", "weight": 1},
            "canary": {"model": "2", "weight": 0},
        },
        canary={
            "variant": "canary",
            "baseline": "champion",
            "steps": [5, 50, 100],
            "min_requests": 100,
            "max_error_rate": 0.01,
            "max_p99_ms": 50,
        },
    )
    path = tmp_path / "policy.json"
    save_policy(policy, path)
    return path, tmp_path / "predictions.jsonl", tmp_path / "decisions.jsonl"


def test_canary_rolls_back_on_injected_error_rate(files):
    policy, log, decisions = files
    _write_log(log, "champion", 1000)
    _write_log(log, "canary", 200, errors=10)  # 5% > 1%
    decision = step_rollout(policy, log, decisions)
    assert decision.action == "rollback" and "error rate 5.00%" in decision.reason
    assert load_policy(policy).live_variants() == ["champion"]
    recorded = [json.loads(line) for line in decisions.read_text().splitlines()]
    assert recorded[-1]["action"] == "rollback" and recorded[-1]["reason"] == decision.reason


def test_canary_rolls_back_on_latency(files):
    policy, log, decisions = files
    _write_log(log, "canary", 200, latency_ms=80)
    assert step_rollout(policy, log, decisions).action == "rollback"


def test_healthy_canary_advances_step_by_step_then_completes(files):
    policy, log, decisions = files
    actions = []
    for _ in range(3):
        _write_log(log, "canary", 150)
        actions.append(step_rollout(policy, log, decisions).action)
    assert actions == ["advance", "advance", "complete"]
    assert load_policy(policy).effective_weights()["canary"] == 1.0
    assert len(decisions.read_text().splitlines()) == 3  # append-only, one line per decision


def test_too_little_traffic_holds(files):
    policy, log, decisions = files
    _write_log(log, "canary", 20)
    decision = step_rollout(policy, log, decisions)
    assert decision.action == "hold" and "20 canary requests" in decision.reason
