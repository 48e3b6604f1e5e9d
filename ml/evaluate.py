"""Model evaluation and the promotion gate.

The gate has two parts, both configured in ``ml/pipeline.yaml``: an absolute floor every
candidate must clear, and a comparison with the current champion on the same holdout, so that a
retrained model is never promoted when it is worse than what is live.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)

from ml.config import GateConfig


def classification_metrics(y_true, score, threshold: float) -> dict[str, float]:
    """Ranking, calibration and thresholded metrics of predicted default probabilities."""
    y_true = np.asarray(y_true)
    score = np.clip(np.asarray(score, dtype=float), 1e-6, 1 - 1e-6)
    predicted = score >= threshold
    return {
        "roc_auc": float(roc_auc_score(y_true, score)),
        "pr_auc": float(average_precision_score(y_true, score)),
        "brier": float(brier_score_loss(y_true, score)),
        "log_loss": float(log_loss(y_true, score)),
        "accuracy": float(accuracy_score(y_true, predicted)),
        "precision": float(precision_score(y_true, predicted, zero_division=0)),
        "recall": float(recall_score(y_true, predicted, zero_division=0)),
        "positive_rate": float(predicted.mean()),
    }


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    reasons: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return "passed" if self.passed else "failed: " + "; ".join(self.reasons)


def gate(
    metrics: dict[str, float], config: GateConfig, champion: dict[str, float] | None = None
) -> GateDecision:
    """Decide whether a model with ``metrics`` may be promoted.

    Args:
        metrics: the candidate's holdout metrics.
        config: the thresholds.
        champion: the current champion's metrics on the same holdout, if there is one.
    """
    reasons = []
    if metrics["roc_auc"] < config.min_roc_auc:
        reasons.append(f"roc_auc {metrics['roc_auc']:.4f} < floor {config.min_roc_auc}")
    if metrics["brier"] > config.max_brier:
        reasons.append(f"brier {metrics['brier']:.4f} > ceiling {config.max_brier}")
    if champion is not None:
        floor = champion["roc_auc"] - config.max_roc_auc_drop_vs_champion
        if metrics["roc_auc"] < floor:
            reasons.append(
                f"roc_auc {metrics['roc_auc']:.4f} < champion's {champion['roc_auc']:.4f}"
                f" - allowed drop {config.max_roc_auc_drop_vs_champion}"
            )
    return GateDecision(passed=not reasons, reasons=reasons)
