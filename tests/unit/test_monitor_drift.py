"""Drift detectors: power on a large shift, silence without drift, the correction's effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data.generate import FEATURE_COLUMNS, Drift, sample_window
from ml.errors import UserError
from ml.monitor.drift import DriftConfig, corrected_threshold, detect, evidently_report_html


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return sample_window(2000, seed=1)


def test_detects_large_covariate_shift_with_evidently(reference):
    current = sample_window(1000, seed=2, drift=Drift("covariate", 1.0))
    result = detect(reference, current)  # the default engine: Evidently's ValueDrift
    assert result.drift_detected and result.dataset_drift
    assert {"income", "utilization"} <= set(result.drifted_features)
    assert result.verdict().startswith("DRIFT")


@pytest.mark.parametrize("seed", [3, 4])
def test_no_drift_windows_do_not_fire(reference, seed):
    result = detect(reference, sample_window(1000, seed=seed), DriftConfig(engine="scipy"))
    assert not result.drift_detected, result.verdict()
    assert result.drift_share == 0.0


def test_scipy_engine_reproduces_evidently_pvalues(reference):
    current = sample_window(500, seed=5, drift=Drift("prior", 1.0))
    fast = detect(reference, current, DriftConfig(engine="scipy"))
    slow = detect(reference, current, DriftConfig(engine="evidently"))
    assert fast.columns[-1].column == "defaulted"  # the label joins the family as target
    for a, b in zip(fast.columns, slow.columns, strict=True):
        assert (a.column, a.method) == (b.column, b.method)
        assert a.p_value == pytest.approx(b.p_value, rel=1e-9, abs=1e-12)


def _null_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    return pd.DataFrame(rng.normal(size=(n, len(FEATURE_COLUMNS))), columns=FEATURE_COLUMNS)


def test_correction_reduces_false_positives():
    rng = np.random.default_rng(0)
    reference = _null_frame(rng, 1000)
    uncorrected = DriftConfig(engine="scipy", correction="none")
    families = [
        [c.p_value for c in detect(reference, _null_frame(rng, 300), uncorrected).columns]
        for _ in range(200)
    ]
    fpr = {
        correction: np.mean(
            [min(ps) <= corrected_threshold(ps, 0.01, correction) for ps in families]
        )
        for correction in ("none", "bh", "bonferroni")
    }
    # Ten tests at 1% each fire together ~10% of the time; corrected, about alpha = 1%.
    assert fpr["none"] >= 0.05
    assert fpr["bh"] <= 0.03 and fpr["bonferroni"] <= 0.03
    assert fpr["bh"] < fpr["none"]


@pytest.mark.parametrize(
    ("pvalues", "correction", "expected"),
    [
        ([0.001, 0.004, 0.5, 0.9], "bh", 0.01 * 2 / 4),  # the second clears 2*alpha/m
        ([0.003, 0.5, 0.6, 0.9], "bh", 0.01 / 4),  # nothing rejected: the bar was alpha/m
        ([0.001, 0.008, 0.5, 0.9], "bonferroni", 0.0025),
        ([0.001, 0.008, 0.5, 0.9], "none", 0.01),
    ],
)
def test_corrected_threshold(pvalues, correction, expected):
    assert corrected_threshold(pvalues, 0.01, correction) == pytest.approx(expected)


def test_missing_feature_is_a_user_error(reference):
    with pytest.raises(UserError, match="lacks feature column"):
        detect(reference, reference.drop(columns=["income"]))


def test_evidently_report_html(reference, tmp_path):
    current = sample_window(300, seed=6, drift=Drift("covariate", 1.0))
    path = evidently_report_html(reference, current, tmp_path / "r" / "drift.html")
    assert path.stat().st_size > 10_000
    assert "utilization" in path.read_text()
