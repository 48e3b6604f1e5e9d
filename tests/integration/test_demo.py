"""`mlops demo` end to end, as a user runs it, on a smaller dataset in a scratch build dir."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

REQUIRED = [
    "dataset.rows", "dataset.quarantined", "dataset.snapshot_sha256", "training.runs",
    "registry.model_name", "registry.champion_version", "serving.requests",
    "serving.errors_5xx", "serving.rejected_4xx", "monitoring.drift_detected",
    "monitoring.report_html", "governance.model_card", "timings_s",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(summary: dict, dotted: str):
    value = summary
    for part in dotted.split("."):
        value = value[part]
    return value


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    build = tmp_path_factory.mktemp("demo-build")
    env = {
        **os.environ,
        "MLOPS_BUILD_DIR": str(build),
        "MLOPS_N_CUSTOMERS": "1500",
        "MLOPS_MLFLOW_PORT": str(_free_port()),
        "MLOPS_SERVING_PORT": str(_free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "ml.cli.main", "demo"],
        capture_output=True, text=True, env=env, timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return build, json.loads((build / "demo" / "summary.json").read_text()), result


def test_summary_has_every_required_key(demo):
    _, summary, _ = demo
    missing = []
    for key in REQUIRED:
        try:
            _get(summary, key)
        except KeyError:
            missing.append(key)
    assert not missing


def test_demo_outcomes(demo):
    _, summary, _ = demo
    assert summary["dataset"]["quarantined"] == sum(summary["dataset"]["injected_faults"].values())
    assert summary["training"]["runs"] >= 3
    assert summary["serving"]["errors_5xx"] == 0
    assert summary["serving"]["rejected_4xx"] > 0
    assert summary["monitoring"]["drift_detected"] is True
    assert summary["retraining"]["triggered"] is True
    assert set(summary["timings_s"]) >= {"data", "features", "training", "monitoring"}


def test_index_links_every_output_and_they_exist(demo):
    build, summary, _ = demo
    index = build / "demo" / "index.html"
    html = index.read_text()
    for dotted in ("monitoring.report_html", "governance.model_card"):
        target = (
            build.parent / _get(summary, dotted)
            if not os.path.isabs(_get(summary, dotted))
            else None
        )
        path = target if target is not None else _get(summary, dotted)
        assert os.path.exists(path), path
    assert html.count("<a href=") >= 4


def test_every_version_has_its_own_model_card(demo):
    build, summary, _ = demo
    cards = summary["governance"]["model_cards"]
    assert len(set(cards.values())) == len(cards) >= 2  # none overwrites another
    retrained = summary["retraining"].get("model_card")
    assert retrained is None or retrained not in cards.values()
    for version, card in cards.items():
        assert f"/v{version}/" in card and (build.parent / card).exists()


def test_progress_is_shown_for_each_stage(demo):
    _, summary, result = demo
    for number in range(1, len(summary["timings_s"]) + 1):
        assert f"[{number}/" in result.stderr
