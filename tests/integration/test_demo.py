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


# --- after the demo: `mlops up`, `mlops status`, `mlops down` on its stores -------------------

UP_PORTS = ("MLFLOW", "SERVING", "FEATURE_SERVER", "FEAST_UI", "PROMETHEUS", "PUSHGATEWAY")
README_REQUEST = {"customer_id": 1001, "loan_amount": 5000, "term_months": 36}


def _mlops(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ml.cli.main", *args],
        capture_output=True, text=True, env=env, timeout=timeout,
    )  # fmt: skip


@pytest.fixture(scope="module")
def platform_up(demo):
    """The embedded platform started on the demo's build, on free ports; stopped after."""
    build, _, _ = demo
    env = {**os.environ, "MLOPS_BUILD_DIR": str(build)}
    env.update({f"MLOPS_{name}_PORT": str(_free_port()) for name in UP_PORTS})
    started = _mlops(env, "up")
    try:
        yield env, started
    finally:
        _mlops(env, "down", timeout=120)


def _urls(output: str) -> dict[str, str]:
    """service -> URL, from the lines `mlops up` prints."""
    lines = [line.split() for line in output.splitlines()]
    return {parts[0]: parts[1] for parts in lines if len(parts) == 2 and "://" in parts[1]}


def test_up_serves_every_url_and_the_readme_request(platform_up):
    import httpx

    _, started = platform_up
    assert started.returncode == 0, started.stderr[-2000:]
    urls = _urls(started.stdout)
    expected = {"mlflow", "serving", "feature-server", "feast-ui"}
    if os.path.exists("/usr/bin/prometheus") or os.environ.get("CI"):
        expected |= {"prometheus", "pushgateway"}
    assert set(urls) == expected, started.stdout
    for name, url in urls.items():
        assert httpx.get(url, timeout=10).status_code == 200, name
    api = urls["serving"].rstrip("/")
    answer = httpx.post(f"{api}/predict", json=README_REQUEST, timeout=30)
    assert answer.status_code == 200 and 0 <= answer.json()["score"] <= 1


def test_prometheus_fires_the_drift_alert_with_the_platforms_rules(platform_up):
    import time

    import httpx

    _, started = platform_up
    urls = _urls(started.stdout)
    if "prometheus" not in urls:
        pytest.skip("Debian's prometheus is not installed (make services installs it)")
    api = "/".join(urls["prometheus"].split("/", 3)[:3]) + "/api/v1/alerts"
    deadline, firing = time.monotonic() + 150, []
    while time.monotonic() < deadline and "MlopsDatasetDriftDetected" not in firing:
        alerts = httpx.get(api, timeout=5).json()["data"]["alerts"]
        firing = [a["labels"]["alertname"] for a in alerts if a["state"] == "firing"]
        time.sleep(2)
    assert "MlopsDatasetDriftDetected" in firing, firing


def test_status_shows_production_review_drift_and_services(platform_up):
    import mlflow

    from ml.governance import approvals

    env, started = platform_up
    previous = mlflow.get_tracking_uri(), mlflow.get_registry_uri()
    mlflow.set_tracking_uri(_urls(started.stdout)["mlflow"])
    mlflow.set_registry_uri(_urls(started.stdout)["mlflow"])
    try:
        client = mlflow.MlflowClient()
        champion = client.get_model_version_by_alias("credit-risk", "champion")
        model_id = champion.source.removeprefix("models:/")  # MLflow 3: the logged model
        review = client.create_model_version(
            "credit-risk", champion.source, champion.run_id, model_id=model_id
        ).version
        flow = {"audit_path": env_path(env) / "status-test-audit.jsonl"}
        for step in (approvals.register_candidate, approvals.request_review):
            step("credit-risk", review, user="alice", role="data_scientist", **flow)
    finally:
        mlflow.set_tracking_uri(previous[0])
        mlflow.set_registry_uri(previous[1])
    shown = _mlops(env, "status", "--json", timeout=120)
    assert shown.returncode == 0, shown.stderr
    status = json.loads(shown.stdout)
    assert status["champion"] == str(champion.version)
    assert {"version": str(champion.version), "status": "production"}.items() <= next(
        v for v in status["versions"] if v["version"] == str(champion.version)
    ).items()
    assert status["awaiting_review"] == [str(review)]
    assert status["drift"]["drift_detected"] is True
    assert status["retraining"]["reason"]
    assert all(s["up"] for s in status["services"].values()), status["services"]
    text = _mlops(env, "status", timeout=120).stdout
    assert f"awaiting review: v{review}" in text and "production" in text


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def env_path(env: dict):
    from pathlib import Path

    return Path(env["MLOPS_BUILD_DIR"])


def test_document_captures_every_ui_of_the_embedded_platform(platform_up, tmp_path):
    """`make document` on what `make up` runs: non-blank screenshots of each UI, no page error."""
    from scripts.document import blank, document_embedded

    env, started = platform_up
    if not os.path.exists("/usr/bin/chromium"):
        from tests.conftest import require_service

        require_service("chromium", "/usr/bin/chromium not found (apt-get install chromium)")
    lines: list[str] = []
    folder = document_embedded(env_path(env), out_root=tmp_path, out=lines.append)
    shots = {p.stem: p for p in (folder / "screenshots").glob("*.png")}
    expected = {"mlflow-runs", "mlflow-registered-model", "serving-api-docs", "feast-ui",
                "demo-index"} | ({"prometheus-alerts"} if "prometheus" in _urls(started.stdout)
                                 else set())  # fmt: skip
    assert set(shots) == expected, lines
    assert not [name for name, png in shots.items() if blank(png)], lines
    assert (folder / "build" / "demo" / "summary.json").exists()
    assert (folder / "README.md").exists()


def test_down_leaves_no_process_it_started(platform_up):
    env, _ = platform_up
    recorded = json.loads((env_path(env) / "platform" / "up.json").read_text())
    stopped = _mlops(env, "down", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    for entry in recorded:
        assert not _running(entry["pid"]), entry["name"]
    assert not (env_path(env) / "platform" / "up.json").exists()


def test_index_loads_in_chromium_with_every_link_and_image(demo):
    """The page people look at: every image renders, every link answers, nothing external."""
    from pathlib import Path

    from tests.conftest import require_service
    from tests.integration.test_site_browser import CHROMIUM, CHROMIUM_ARGS, _offline_only, _serve

    if not Path(CHROMIUM).exists():
        require_service("chromium", f"{CHROMIUM} not found (apt-get install chromium)")
    from functools import partial

    from playwright.sync_api import sync_playwright

    build, _, _ = demo
    problems: list[str] = []
    with _serve(build / "demo") as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.route("**/*", partial(_offline_only, base=base, problems=problems))
            page.goto(f"{base}/index.html", wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(i => [i.src, i.complete ? i.naturalWidth : 0])"
            )
            problems += [f"broken image {src}" for src, width in images if not width]
            links = page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
            problems += [
                f"broken link {href}" for href in links if page.request.get(href).status != 200
            ]
            page.screenshot(path=str(build / "demo" / "index.png"), full_page=True)
        finally:
            browser.close()
    assert not problems, problems
    assert len(images) >= 4 and len(links) >= 8, (images, links)
