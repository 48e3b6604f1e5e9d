"""Drift and model-quality monitoring on Evidently 0.7.

* :mod:`ml.monitor.drift` — per-column drift tests, one multiple-testing correction across the
  family, the dataset / prediction / target verdicts, Evidently's HTML report.
* :mod:`ml.monitor.quality` — model quality once delayed labels arrive, and the quality-drop rule.
* :mod:`ml.monitor.evaluation` — the measured false-positive and detection rates.
* :mod:`ml.monitor.report` — the embedded HTML report with Evidently's page and our plots.
* :mod:`ml.monitor.push` — the Prometheus gauges and the Pushgateway.
"""
