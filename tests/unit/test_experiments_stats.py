"""The paired tests of `mlops experiments compare`: known values and error rates by simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import average_precision_score, roc_auc_score

from ml.experiments import stats
from ml.experiments.simulate import simulate


def brute_force_delong(y, scores):
    """DeLong (1988) from its definition: Mann-Whitney kernels over every (positive, negative)."""
    y = np.asarray(y)
    aucs, v10, v01 = [], [], []
    for s in scores:
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        aucs.append(psi.mean())
        v10.append(psi.mean(axis=1))
        v01.append(psi.mean(axis=0))
    cov = np.cov(v10) / len(v10[0]) + np.cov(v01) / len(v01[0])
    return np.array(aucs), cov


def test_fast_delong_equals_the_pairwise_definition_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 120)
    scores = np.round(rng.random((3, 120)) + y * [[0.2], [0.4], [0.3]], 1)  # many ties
    auc, cov = stats.delong(y, scores)
    expected_auc, expected_cov = brute_force_delong(y, scores)
    np.testing.assert_allclose(auc, expected_auc)
    np.testing.assert_allclose(auc, [roc_auc_score(y, s) for s in scores])
    np.testing.assert_allclose(cov, expected_cov)


def test_average_precision_equals_scikit_learn_on_the_sample_and_on_a_resample():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 200)
    score = np.round(rng.random(200) * 0.6 + 0.3 * y, 2)
    assert stats.average_precision(y, score)[0] == pytest.approx(average_precision_score(y, score))
    counts = stats.resample_counts(200, 2, seed=1)
    rows = np.repeat(np.arange(200), counts[1])
    assert stats.average_precision(y, score, counts)[1] == pytest.approx(
        average_precision_score(y[rows], score[rows])
    )


def test_a_clearly_better_model_is_significant_on_every_ranking_metric():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 800)
    weak = 1 / (1 + np.exp(-(rng.standard_normal(800) + 0.3 * (2 * y - 1))))
    strong = 1 / (1 + np.exp(-(rng.standard_normal(800) + 1.5 * (2 * y - 1))))
    tests = {t.metric: t for t in stats.holm(stats.paired_tests(y, weak, strong, 0.5, 500))}
    assert tests["roc_auc"].significant and tests["roc_auc"].difference > 0
    assert tests["pr_auc"].significant and tests["brier"].difference < 0
    assert all(t.p_adjusted >= t.p_value for t in tests.values())


def binomial_bounds(n: int, alpha: float) -> tuple[float, float]:
    """Rejection rates that n honest level-alpha tests stay within 99.9% of the time."""
    low, high = scipy_stats.binom.ppf([0.0005, 0.9995], n, alpha)
    return low / n, high / n


def test_equal_models_are_rejected_at_the_nominal_rate():
    """200 holdouts from two equally good, correlated models: DeLong rejects ~5%, and the whole
    Holm-corrected family (DeLong, three bootstraps, McNemar) no more than 5%."""
    result = simulate(simulations=200, holdout_rows=300, resamples=400, seed=11)
    low, high = binomial_bounds(200, 0.05)
    assert low <= result.delong_rejection_rate <= high
    assert result.family_rejection_rate <= high


def test_delong_detects_a_real_difference():
    result = simulate(simulations=100, holdout_rows=2000, auc_difference=0.05, seed=12)
    assert result.delong_rejection_rate > 0.9
