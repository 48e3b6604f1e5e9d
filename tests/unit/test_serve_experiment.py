"""The experiment test's error rates by simulation, and its statistics against references."""

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from ml.serve.experiment import required_n_per_arm, simulate, z_test_pvalues


def test_aa_false_positive_rate_at_most_nominal_over_2000_experiments():
    result = simulate(experiments=2000, n_per_arm=2000, seed=0)
    assert result.false_positive_rate <= result.alpha


def test_power_at_the_stated_effect():
    result = simulate(experiments=2000, n_per_arm=2000, effect=0.035, seed=1)
    assert result.expected_power >= 0.8
    assert result.power >= 0.8
    assert abs(result.power - result.expected_power) < 0.03


@pytest.mark.parametrize(
    "k1, n1, k2, n2", [(850, 1000, 800, 1000), (30, 90, 45, 110), (5, 50, 5, 60)]
)
def test_z_test_equals_chi2_with_yates(k1, n1, k2, n2):
    table = np.array([[k1, n1 - k1], [k2, n2 - k2]])
    expected = chi2_contingency(table, correction=True).pvalue
    assert z_test_pvalues(k1, n1, k2, n2) == pytest.approx(expected, rel=1e-9)


def test_required_sample_size_grows_as_the_effect_shrinks():
    assert required_n_per_arm(0.85, 0.01) > required_n_per_arm(0.85, 0.03) > 100
