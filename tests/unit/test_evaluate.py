"""The promotion gate: absolute floors, and never worse than the champion."""

import pytest

from ml.config import GateConfig
from ml.evaluate import classification_metrics, gate

GATE = GateConfig(min_roc_auc=0.75, max_brier=0.16, max_roc_auc_drop_vs_champion=0.0)


@pytest.mark.parametrize(
    ("auc", "brier", "champion_auc", "passed", "reason"),
    [
        (0.80, 0.10, None, True, ""),
        (0.70, 0.10, None, False, "roc_auc 0.7000 < floor"),
        (0.80, 0.20, None, False, "brier 0.2000 > ceiling"),
        (0.80, 0.10, 0.81, False, "champion"),
        (0.81, 0.10, 0.81, True, ""),
    ],
)
def test_gate(auc, brier, champion_auc, passed, reason):
    champion = None if champion_auc is None else {"roc_auc": champion_auc}
    decision = gate({"roc_auc": auc, "brier": brier}, GATE, champion)
    assert decision.passed is passed
    assert reason in decision.summary()


def test_metrics_of_a_perfect_and_a_useless_ranker():
    y = [0, 0, 1, 1]
    assert classification_metrics(y, [0.1, 0.2, 0.8, 0.9], 0.5)["roc_auc"] == 1.0
    assert classification_metrics(y, [0.5, 0.5, 0.5, 0.5], 0.5)["roc_auc"] == 0.5
