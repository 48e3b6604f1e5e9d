"""Quality monitor: the label join, the metrics and the drop rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data.generate import Drift, sample_window
from ml.errors import UserError
from ml.monitor.quality import (
    QualityConfig,
    join_labels,
    quality,
    quality_by_window,
    quality_decision,
    relationship_drift_pvalue,
)

T0 = pd.Timestamp("2025-03-01", tz="UTC")


def _log(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "request_id": [f"r{i}" for i in range(n)],
            "customer_id": range(100, 100 + n),
            "application_id": pd.array([1, 2, 3, None, 5, 6][:n], dtype="Int64"),
            "timestamp": [T0 + pd.Timedelta(days=i) for i in range(n)],
            "variant": ["champion", "challenger"] * (n // 2),
            "model_version": "3",
            "score": np.linspace(0.1, 0.9, n),
            "prediction": (np.linspace(0.1, 0.9, n) >= 0.5).astype(int),
        }
    )


def test_join_keeps_labelled_rows_and_the_latest_label():
    labels = pd.DataFrame(
        {
            "application_id": [1, 2, 2, 3, 5, 99],
            "defaulted": [0, 1, 0, 1, 1, 1],
            "label_timestamp": [T0 + pd.Timedelta(days=d) for d in (40, 40, 50, 200, 40, 40)],
        }
    )
    joined = join_labels(_log(), labels, as_of=T0 + pd.Timedelta(days=100))
    # 4 has no application id, 6 no label, 3's label is not known yet, 99 was never predicted
    assert joined["application_id"].tolist() == [1, 2, 5]
    assert joined.loc[joined["application_id"] == 2, "defaulted"].item() == 0  # corrected


def test_join_names_a_missing_column():
    with pytest.raises(UserError, match="lacks column"):
        join_labels(_log().drop(columns=["score"]), pd.DataFrame(columns=["application_id"]))


def test_quality_metrics_and_windows():
    frame = _log().assign(defaulted=[0, 0, 0, 1, 1, 1])
    metrics = quality(frame)
    assert metrics.roc_auc == 1.0
    assert metrics.precision == 1.0 and metrics.recall == 1.0
    assert 0 < metrics.brier < 0.25
    windows = quality_by_window(frame, QualityConfig(window="3D"))
    assert len(windows) == 4 and set(windows["variant"]) == {"champion", "challenger"}


def _scored(n: int, signal: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=n))))
    return pd.DataFrame({"defaulted": y, "score": score})


def test_decision_flags_a_quality_drop_with_a_reason():
    baseline = quality(_scored(2000, 1.5, 0))
    held = quality_decision(quality(_scored(1000, 1.5, 1)), baseline)
    dropped = quality_decision(quality(_scored(1000, 0.3, 2)), baseline)
    assert not held.drop and held.reason.startswith("quality holds")
    assert dropped.drop and dropped.reason.startswith("quality drop") and dropped.auc_drop > 0.1


def test_decision_needs_enough_labels():
    decision = quality_decision(quality(_scored(50, 0.0, 3)), quality(_scored(2000, 1.5, 0)))
    assert not decision.drop and "no decision" in decision.reason


def test_relationship_test_sees_concept_drift_only():
    reference = sample_window(2000, seed=11)
    same = relationship_drift_pvalue(reference, sample_window(1000, seed=12))
    moved = relationship_drift_pvalue(
        reference, sample_window(1000, seed=13, drift=Drift("concept", 1.0))
    )
    assert same > 0.001 and moved < 1e-4
