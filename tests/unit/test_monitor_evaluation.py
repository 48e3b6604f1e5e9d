"""The detection-quality experiment: output shape on a tiny run, delay and interval helpers."""

from __future__ import annotations

import pytest

from ml.monitor.evaluation import EvaluationConfig, clopper_pearson, evaluate, mean_delay

TINY = EvaluationConfig(
    n_windows=2,
    n_null_windows=3,
    window_size=200,
    reference_size=600,
    sizes={"covariate": (1.0,), "prior": (2.0,), "concept": (1.0,)},
    material={"covariate": 1.0, "prior": 2.0, "concept": 1.0},
    check_windows=1,
)


@pytest.fixture(scope="module")
def doc() -> dict:
    return evaluate(TINY)


def test_document_has_the_agreed_shape(doc):
    for name in ("ours", "evidently_default"):
        assert 0.0 <= doc[name]["fpr"] <= 1.0
        scenarios = doc[name]["scenarios"]
        assert set(scenarios) == {"covariate", "prior", "concept"}
        for sizes in scenarios.values():
            for size, entry in sizes.items():
                assert isinstance(size, str)
                assert set(entry) == {"detection_rate", "delay_windows"}
                assert 0.0 <= entry["detection_rate"] <= 1.0
    assert doc["material"] == {"covariate": "1", "prior": "2", "concept": "1"}
    assert doc["n_null_windows"] == 3 and doc["window_size"] == 200


def test_large_covariate_drift_is_caught_and_engines_agree(doc):
    assert doc["ours"]["scenarios"]["covariate"]["1"]["detection_rate"] == 1.0
    assert doc["ours"]["scenarios"]["covariate"]["1"]["delay_windows"] == 1.0
    check = doc["cross_checks"][0]
    assert check["max_abs_pvalue_diff_scipy_vs_evidently"] < 1e-12
    assert check["default_share_metric"] == check["default_share_full_preset"]


@pytest.mark.parametrize(
    ("alarms", "expected"),
    [
        ([True, True, True], 1.0),
        ([False, False, False], None),
        ([True, False], 1.5),  # start on the alarm: 1; start after it: wrap, 2
        ([False, False, False, True], 2.5),
    ],
)
def test_mean_delay(alarms, expected):
    assert mean_delay(alarms) == expected


def test_clopper_pearson_rule_of_three():
    low, high = clopper_pearson(0, 300)
    assert low == 0.0 and high == pytest.approx(3 / 300, rel=0.25)
