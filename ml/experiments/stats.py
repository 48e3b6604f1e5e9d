"""Paired tests for two models scored on the same holdout rows.

* ROC AUC: DeLong's test for correlated AUCs, in the fast O(n log n) form of Sun & Xu (2014).
* PR AUC, Brier, log loss: a paired bootstrap (the same resampled rows for both models) gives a
  confidence interval of the difference and a two-sided p-value.
* Accuracy at the decision threshold: McNemar's test on the discordant rows.
* Holm's step-down correction keeps the family-wise error at alpha over all the tests.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

# The same clipping as ml.evaluate.classification_metrics, so point estimates match the runs'.
EPS = 1e-6
BOOTSTRAP_METRICS = ("pr_auc", "brier", "log_loss")


@dataclass(frozen=True)
class Test:
    """One paired test of ``metric`` between model A and model B (difference = B - A)."""

    metric: str
    method: str
    a: float
    b: float
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    p_adjusted: float = float("nan")
    significant: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def delong(y: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs of k score vectors on the same rows and their DeLong covariance matrix.

    Sun & Xu's fast form: the structural components come from midranks (within positives,
    within negatives, and overall) instead of the O(m·n) pairwise comparisons.

    Args:
        y: 0/1 labels, shape (n,).
        scores: shape (k, n), one row per model.

    Returns:
        ``(auc, cov)``: shapes (k,) and (k, k).
    """
    scores = np.atleast_2d(scores)
    positive = y == 1
    x, z = scores[:, positive], scores[:, ~positive]
    m, n = x.shape[1], z.shape[1]
    rank_x = stats.rankdata(x, axis=1)
    rank_z = stats.rankdata(z, axis=1)
    rank_all = stats.rankdata(np.hstack([x, z]), axis=1)
    auc = (rank_all[:, :m].sum(axis=1) / m - (m + 1) / 2) / n
    v_pos = (rank_all[:, :m] - rank_x) / n  # per positive: share of negatives ranked below
    v_neg = 1 - (rank_all[:, m:] - rank_z) / m  # per negative: share of positives above
    cov = np.atleast_2d(np.cov(v_pos)) / m + np.atleast_2d(np.cov(v_neg)) / n
    return auc, cov


def delong_test(y, score_a, score_b, alpha: float = 0.05) -> Test:
    """DeLong's two-sided test of AUC(B) - AUC(A) = 0, with its normal confidence interval."""
    auc, cov = delong(np.asarray(y), np.vstack([score_a, score_b]))
    difference = float(auc[1] - auc[0])
    se = float(np.sqrt(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0)))
    z = stats.norm.ppf(1 - alpha / 2)
    p = 1.0 if se == 0 else float(2 * stats.norm.sf(abs(difference) / se))
    return Test(
        "roc_auc", "DeLong", float(auc[0]), float(auc[1]), difference,
        float(difference - z * se), float(difference + z * se), p,
    )  # fmt: skip


def average_precision(y, score, weights: np.ndarray | None = None) -> np.ndarray:
    """Average precision (as scikit-learn's, ties grouped), once per row of ``weights``.

    AP = Σ over distinct thresholds of Δrecall · precision. A bootstrap resample is a row of
    counts (how often each original row was drawn), so the rows are sorted once, not per
    resample; a row drawn zero times adds nothing to any cumulative sum.

    Args:
        y: 0/1 labels, shape (n,).
        score: shape (n,).
        weights: shape (B, n) resample counts; None for the sample itself.

    Returns:
        Shape (B,) (or (1,) without weights).
    """
    y, score = np.asarray(y, dtype=float), np.asarray(score, dtype=float)
    order = np.argsort(-score, kind="stable")
    s, hits = score[order], y[order]
    w = np.ones((1, len(y))) if weights is None else weights[:, order]
    tp = np.cumsum(w * hits, axis=1)
    seen = np.cumsum(w, axis=1)
    last_of_tie = np.append(s[1:] != s[:-1], True)
    tp_at_ends = np.maximum.accumulate(np.where(last_of_tie, tp, 0), axis=1)
    previous = np.hstack([np.zeros((len(w), 1)), tp_at_ends[:, :-1]])
    gained = np.where(last_of_tie, tp - previous, 0)
    return (gained * tp / np.maximum(seen, 1)).sum(axis=1) / np.maximum(tp[:, -1], 1)


def _brier(y, p, weights: np.ndarray | None = None) -> np.ndarray:
    return _weighted_mean((p - y) ** 2, weights)


def _log_loss(y, p, weights: np.ndarray | None = None) -> np.ndarray:
    return _weighted_mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)), weights)


def _weighted_mean(values: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    if weights is None:
        return np.array([values.mean()])
    return weights @ values / len(values)


_METRIC_FUNCTIONS = {"pr_auc": average_precision, "brier": _brier, "log_loss": _log_loss}


def resample_counts(n: int, resamples: int, seed: int = 0) -> np.ndarray:
    """(resamples, n) counts of each row in a bootstrap resample of n rows with replacement."""
    rows = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    offsets = (np.arange(resamples) * n)[:, None]
    return np.bincount((rows + offsets).ravel(), minlength=resamples * n).reshape(resamples, n)


def bootstrap_tests(
    y, score_a, score_b, resamples: int = 2000, alpha: float = 0.05, seed: int = 0
) -> list[Test]:
    """Paired percentile-bootstrap tests of B - A for PR AUC, Brier and log loss.

    Both models are scored on the same resampled rows, so the interval reflects the
    difference's own variance, which is far smaller than either metric's when the models agree.
    The p-value is twice the smaller share of resampled differences on either side of 0.
    """
    y = np.asarray(y, dtype=float)
    a = np.clip(np.asarray(score_a, dtype=float), EPS, 1 - EPS)
    b = np.clip(np.asarray(score_b, dtype=float), EPS, 1 - EPS)
    counts = resample_counts(len(y), resamples, seed)
    tests = []
    for metric in BOOTSTRAP_METRICS:
        function = _METRIC_FUNCTIONS[metric]
        value_a, value_b = float(function(y, a)[0]), float(function(y, b)[0])
        resampled = function(y, b, counts) - function(y, a, counts)
        low, high = np.quantile(resampled, [alpha / 2, 1 - alpha / 2])
        # (count + 1) / (B + 1): a bootstrap p-value is never exactly 0.
        tail = (min(np.sum(resampled <= 0), np.sum(resampled >= 0)) + 1) / (resamples + 1)
        tests.append(
            Test(
                metric,
                "paired bootstrap",
                value_a,
                value_b,
                value_b - value_a,
                float(low),
                float(high),
                float(min(1.0, 2 * tail)),
            )
        )
    return tests


def mcnemar_test(y, score_a, score_b, threshold: float, alpha: float = 0.05) -> Test:
    """McNemar's test of accuracy at ``threshold``: exact binomial on few discordant rows."""
    from statsmodels.stats.contingency_tables import mcnemar

    y = np.asarray(y).astype(bool)
    right_a = (np.asarray(score_a) >= threshold) == y
    right_b = (np.asarray(score_b) >= threshold) == y
    table = np.array(
        [[np.sum(right_a & right_b), np.sum(right_a & ~right_b)],
         [np.sum(~right_a & right_b), np.sum(~right_a & ~right_b)]]
    )  # fmt: skip
    discordant = table[0, 1] + table[1, 0]
    result = mcnemar(table, exact=discordant < 25, correction=True)
    difference = float(right_b.mean() - right_a.mean())
    # Wald interval of a paired difference in proportions: (b_only - a_only) / n.
    n = len(y)
    se = np.sqrt(max(discordant / n - difference**2, 0.0) / n)
    z = stats.norm.ppf(1 - alpha / 2)
    return Test(
        "accuracy", "McNemar", float(right_a.mean()), float(right_b.mean()), difference,
        float(difference - z * se), float(difference + z * se), float(result.pvalue),
    )  # fmt: skip


def paired_tests(
    y, score_a, score_b, threshold: float, resamples: int = 2000, alpha: float = 0.05
) -> list[Test]:
    """Every paired test of B against A on one holdout (uncorrected p-values)."""
    return [
        delong_test(y, score_a, score_b, alpha),
        *bootstrap_tests(y, score_a, score_b, resamples, alpha),
        mcnemar_test(y, score_a, score_b, threshold, alpha),
    ]


def holm(tests: list[Test], alpha: float = 0.05) -> list[Test]:
    """The same tests with Holm-adjusted p-values and the verdict at family-wise ``alpha``."""
    from dataclasses import replace

    from statsmodels.stats.multitest import multipletests

    if not tests:
        return []
    reject, adjusted, _, _ = multipletests([t.p_value for t in tests], alpha, method="holm")
    return [
        replace(t, p_adjusted=float(p), significant=bool(r))
        for t, p, r in zip(tests, adjusted, reject, strict=True)
    ]
