"""Dashboards: every query reads only series something exports; refresh and datasource rules."""

from __future__ import annotations

import json
import re

import pytest

from components.dashboards import dashboards

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_alerting_promql import allowed_series, metric_names
except ImportError:  # pragma: no cover
    from tests.infra.test_alerting_promql import allowed_series, metric_names

BOARDS = dashboards()
REQUIRED = {
    "mlops-service-health.json",
    "mlops-model-quality-drift.json",
    "mlops-ab-experiment.json",
    "mlops-pipeline-runs.json",
}


def _panels(board: dict) -> list[dict]:
    """Panels including those nested in collapsed rows."""
    out = []
    for panel in board.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return [p for p in out if p.get("type") != "row"]


def _targets() -> list[tuple[str, str, dict]]:
    return [
        (file, panel["title"], target)
        for file, board in BOARDS.items()
        for panel in _panels(board)
        for target in panel.get("targets", [])
    ]


def _seconds(refresh: str) -> float:
    value, unit = re.fullmatch(r"(\d+)([smh])", refresh).groups()
    return int(value) * {"s": 1, "m": 60, "h": 3600}[unit]


def test_the_four_dashboards_exist_and_serialize() -> None:
    assert set(BOARDS) >= REQUIRED
    for board in BOARDS.values():
        assert "null" not in json.dumps(board)  # Grafana defaults missing fields, not nulls
        assert board["uid"] and board["title"]


@pytest.mark.parametrize("file", sorted(BOARDS))
def test_refresh_at_most_a_minute(file: str) -> None:
    assert _seconds(BOARDS[file]["refresh"]) <= 60


@pytest.mark.parametrize("file", sorted(BOARDS))
def test_every_panel_has_a_query_and_the_prometheus_datasource(file: str) -> None:
    for panel in _panels(BOARDS[file]):
        assert panel.get("targets"), panel["title"]
        assert panel["datasource"]["type"] == "prometheus", panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert all(ref_ids) and len(set(ref_ids)) == len(ref_ids), panel["title"]


@pytest.mark.parametrize(
    ("file", "title", "target"), _targets(), ids=lambda x: x if isinstance(x, str) else ""
)
def test_queries_read_only_exported_series(file: str, title: str, target: dict) -> None:
    names = metric_names(target["expr"])
    assert names, f"{file} / {title}: no metric in {target['expr']!r}"
    unknown = names - allowed_series()
    assert not unknown, f"{file} / {title} reads {unknown}, which nothing exports"


def test_every_first_party_metric_appears_on_some_dashboard() -> None:
    import ml.metrics

    read = set().union(*(metric_names(t["expr"]) for _, _, t in _targets()))
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in read}
    missing = {spec.name for spec in ml.metrics.EXPORTED} - families
    assert not missing, f"exported but on no dashboard: {missing}"
