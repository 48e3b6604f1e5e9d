"""Monte Carlo check of the comparison's tests: false-positive rate and power.

Two models score the same holdout under a binormal model: a model with separation ``mu`` gives
positives N(mu, 1) and negatives N(0, 1), so its AUC is Φ(mu/√2); the two models' noise is
correlated (``rho``), as two models trained on the same data are. Probabilities are the exact
posteriors at the given prevalence, so both models are calibrated and, when their AUCs are
equal, every paired test's null hypothesis holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats

from ml.experiments.stats import delong_test, paired_tests


@dataclass(frozen=True)
class SimulationResult:
    simulations: int
    holdout_rows: int
    auc: float
    auc_difference: float
    alpha: float
    delong_rejection_rate: float  # false-positive rate when auc_difference == 0, else power
    family_rejection_rate: float  # any test rejected after Holm (null only; else NaN)

    def to_dict(self) -> dict:
        """JSON-able: a rate that was not measured is None, not NaN."""
        return {k: None if v != v else v for k, v in asdict(self).items()}


def simulate_holdout(
    rng: np.random.Generator, n: int, auc_a: float, auc_b: float, rho: float, prevalence: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labels, probabilities of A, probabilities of B) on one simulated holdout."""
    y = (rng.random(n) < prevalence).astype(int)
    shared = rng.standard_normal(n)
    probabilities = []
    for auc in (auc_a, auc_b):
        mu = np.sqrt(2) * scipy_stats.norm.ppf(auc)
        noise = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal(n)
        score = mu * y + noise
        logit = np.log(prevalence / (1 - prevalence)) + mu * score - mu**2 / 2
        probabilities.append(1 / (1 + np.exp(-logit)))
    return y, probabilities[0], probabilities[1]


def simulate(
    simulations: int = 200,
    holdout_rows: int = 500,
    auc: float = 0.80,
    auc_difference: float = 0.0,
    alpha: float = 0.05,
    rho: float = 0.6,
    prevalence: float = 0.2,
    resamples: int = 300,
    seed: int = 0,
) -> SimulationResult:
    """Rejection rates over ``simulations`` holdouts.

    With ``auc_difference == 0`` it measures false positives: DeLong's alone, and the whole
    family (DeLong, three bootstraps, McNemar) after Holm. Otherwise it measures DeLong's power
    to detect ``auc_difference`` (the family is then not run: it has no single null).
    """
    rng = np.random.default_rng(seed)
    delong_rejections = family_rejections = 0
    for _ in range(simulations):
        y, a, b = simulate_holdout(rng, holdout_rows, auc, auc + auc_difference, rho, prevalence)
        delong_rejections += delong_test(y, a, b, alpha).p_value < alpha
        if auc_difference == 0:
            # Holm rejects anything iff its first step does (min p < alpha / k); this is exact
            # and avoids statsmodels' multipletests, which runs gc.collect() on every call.
            family = [t.p_value for t in paired_tests(y, a, b, 0.5, resamples, alpha)]
            family_rejections += min(family) < alpha / len(family)
    return SimulationResult(
        simulations,
        holdout_rows,
        auc,
        auc_difference,
        alpha,
        delong_rejections / simulations,
        family_rejections / simulations if auc_difference == 0 else float("nan"),
    )
