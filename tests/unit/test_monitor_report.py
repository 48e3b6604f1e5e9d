"""The embedded monitoring report writes Evidently's page, our plots and an index."""

from __future__ import annotations

from ml.data.generate import Drift, sample_window
from ml.monitor.report import write_monitoring_report


def test_report_links_every_part(tmp_path):
    reference = sample_window(1000, seed=31).assign(score=lambda f: f["utilization"].clip(0, 1))
    current = sample_window(500, seed=32, drift=Drift("covariate", 1.0)).assign(
        score=lambda f: f["utilization"].clip(0, 1)
    )
    index = write_monitoring_report(reference, current, tmp_path / "report")
    page = index.read_text()
    assert "DRIFT" in page
    for name in ("evidently_drift.html", "pvalues.png", "histograms.png", "score.png"):
        assert (index.parent / name).stat().st_size > 1000
        assert name in page
