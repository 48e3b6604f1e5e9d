"""Model quality once the delayed labels arrive, and the rule that calls a quality drop.

A prediction is scored now; whether the applicant defaulted is known 30–90 days later. So the
monitor joins the prediction log to the labels that have arrived (on ``application_id``; rows
without one, such as pure scoring calls, can never be labelled), computes ROC AUC, the Brier
score and precision/recall at the decision threshold per window, and compares a window with the
baseline measured on the reference data.

A drop must be both *material* (AUC down by at least ``min_auc_drop``, or Brier up by at least
``min_brier_increase``) and *significant* (one-sided z-test below ``alpha``, using the
Hanley–McNeil standard error of an AUC and the sample variance of the squared errors): the first
keeps noise in small windows from retraining the model, the second keeps tiny but real changes
on huge windows from doing the same.

A third, model-free test looks at the relationship itself: :func:`relationship_drift_pvalue`
fits one logistic regression of the label on the features to the reference and current windows
together, with every coefficient allowed to differ in the current window, and tests those
differences (likelihood ratio). It catches concept drift (P(y|x) moved) earlier than the AUC,
because it does not depend on how the change happens to move the ranking.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ml.data.generate import FEATURE_COLUMNS, LABEL
from ml.errors import UserError

PREDICTION_LOG_COLUMNS = (
    "request_id",
    "customer_id",
    "application_id",
    "timestamp",
    "variant",
    "model_version",
    "score",
    "prediction",
)
LABEL_COLUMNS = ("application_id", LABEL, "label_timestamp")


class QualityConfig(BaseModel):
    """The quality-drop rule; every default lives here."""

    model_config = ConfigDict(frozen=True)

    decision_threshold: float = Field(
        default=0.5, gt=0, lt=1, description="Score that means 'default'."
    )
    window: str = Field(default="7D", description="Pandas frequency of the quality windows.")
    min_labelled: int = Field(default=200, ge=20, description="Fewer labelled rows: no decision.")
    min_auc_drop: float = Field(default=0.03, ge=0, description="Smallest AUC drop that matters.")
    min_brier_increase: float = Field(
        default=0.01, ge=0, description="Smallest Brier rise that matters."
    )
    alpha: float = Field(
        default=0.001, gt=0, lt=1, description="Level of each of the three tests."
    )
    features: tuple[str, ...] = Field(
        default=FEATURE_COLUMNS, description="Inputs of the label model."
    )


@dataclass(frozen=True)
class QualityMetrics:
    """Quality of the scores in one labelled window."""

    n: int
    positives: int
    default_rate: float
    roc_auc: float
    roc_auc_se: float
    brier: float
    brier_var: float  # variance of the squared errors, for the Brier test
    precision: float
    recall: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class QualityDecision:
    """Whether quality dropped against the baseline, and why."""

    drop: bool
    reason: str
    auc_drop: float
    auc_p_value: float
    brier_increase: float
    brier_p_value: float
    relationship_p_value: float = math.nan


def join_labels(
    predictions: pd.DataFrame, labels: pd.DataFrame, as_of: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Predictions that have a known label, with ``defaulted`` and ``label_timestamp``.

    Args:
        predictions: The prediction log (see :data:`PREDICTION_LOG_COLUMNS`).
        labels: Delayed outcomes (see :data:`LABEL_COLUMNS`).
        as_of: Only labels known at this time count (default: all of them).

    Returns:
        One row per labelled prediction, ordered by prediction time.

    Raises:
        UserError: A required column is missing.
    """
    _require(predictions, PREDICTION_LOG_COLUMNS, "prediction log")
    _require(labels, LABEL_COLUMNS, "labels")
    known = labels.dropna(subset=["application_id", LABEL])
    if as_of is not None:
        known = known[known["label_timestamp"] <= as_of]
    # A corrected label supersedes the first one: keep the latest per application.
    known = known.sort_values("label_timestamp").drop_duplicates("application_id", keep="last")
    logged = predictions.dropna(subset=["application_id"]).drop(
        columns=[LABEL, "label_timestamp"], errors="ignore"
    )
    joined = logged.astype({"application_id": "int64"}).merge(
        known[list(LABEL_COLUMNS)].astype({"application_id": "int64"}),
        on="application_id",
        how="inner",
    )
    joined[LABEL] = joined[LABEL].astype("int64")
    return joined.sort_values("timestamp").reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise UserError(
            f"the {name} lacks column(s) {', '.join(missing)}",
            f"provide {', '.join(columns)}",
        )


def quality(
    frame: pd.DataFrame,
    decision_threshold: float = 0.5,
    score: str = "score",
    label: str = LABEL,
) -> QualityMetrics:
    """ROC AUC, Brier and precision/recall of ``score`` against ``label`` in one window.

    The ``prediction`` column is used for precision/recall when present (it is what was
    served); otherwise ``score >= decision_threshold``.
    """
    y = frame[label].to_numpy(dtype=int)
    p = frame[score].to_numpy(dtype=float)
    predicted = (
        frame["prediction"].to_numpy(dtype=int)
        if "prediction" in frame.columns
        else (p >= decision_threshold).astype(int)
    )
    auc = _roc_auc(y, p)
    squared = (p - y) ** 2
    true_pos = int(((predicted == 1) & (y == 1)).sum())
    return QualityMetrics(
        n=len(y),
        positives=int(y.sum()),
        default_rate=float(y.mean()) if len(y) else math.nan,
        roc_auc=auc,
        roc_auc_se=_auc_se(auc, int(y.sum()), int((1 - y).sum())),
        brier=float(squared.mean()) if len(y) else math.nan,
        brier_var=float(squared.var(ddof=1)) if len(y) > 1 else math.nan,
        precision=true_pos / predicted.sum() if predicted.sum() else 0.0,
        recall=true_pos / y.sum() if y.sum() else math.nan,
    )


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    if len(np.unique(y)) < 2:
        return math.nan  # one class only: AUC is undefined
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def _auc_se(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil (1982) standard error of an AUC."""
    if math.isnan(auc) or n_pos == 0 or n_neg == 0:
        return math.nan
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)
    return math.sqrt(max(var, 0.0) / (n_pos * n_neg))


def quality_by_window(joined: pd.DataFrame, config: QualityConfig | None = None) -> pd.DataFrame:
    """Quality per ``config.window`` of prediction time and per variant.

    Args:
        joined: Output of :func:`join_labels`.
        config: Window length and decision threshold.

    Returns:
        One row per (window start, variant) with the fields of :class:`QualityMetrics`.
    """
    config = config or QualityConfig()
    rows = []
    windows = pd.Grouper(key="timestamp", freq=config.window)
    for (start, variant), group in joined.groupby([windows, "variant"]):
        if len(group):
            metrics = quality(group, config.decision_threshold).to_dict()
            rows.append({"window_start": start, "variant": variant, **metrics})
    return pd.DataFrame(rows)


def quality_decision(
    current: QualityMetrics,
    baseline: QualityMetrics,
    config: QualityConfig | None = None,
    relationship_p_value: float | None = None,
) -> QualityDecision:
    """Apply the quality-drop rule of the module docstring to one window.

    Args:
        current: Quality of the recent labelled window.
        baseline: Quality of the same model on the reference window.
        config: Materiality floors and test level.
        relationship_p_value: Result of :func:`relationship_drift_pvalue`, if computed.

    Returns:
        The decision and a one-line reason.
    """
    config = config or QualityConfig()
    auc_drop = baseline.roc_auc - current.roc_auc
    brier_rise = current.brier - baseline.brier
    if current.n < config.min_labelled or math.isnan(current.roc_auc):
        reason = f"only {current.n} labelled rows (need {config.min_labelled}): no decision"
        return QualityDecision(False, reason, auc_drop, math.nan, brier_rise, math.nan)
    auc_p = _one_sided_p(auc_drop, math.hypot(current.roc_auc_se, baseline.roc_auc_se))
    brier_se = math.sqrt(current.brier_var / current.n + baseline.brier_var / baseline.n)
    brier_p = _one_sided_p(brier_rise, brier_se)
    auc_bad = auc_drop >= config.min_auc_drop and auc_p < config.alpha
    brier_bad = brier_rise >= config.min_brier_increase and brier_p < config.alpha
    rel_p = math.nan if relationship_p_value is None else relationship_p_value
    rel_bad = rel_p < config.alpha
    parts = [
        f"AUC {current.roc_auc:.3f} vs baseline {baseline.roc_auc:.3f} (p={auc_p:.2g})",
        f"Brier {current.brier:.3f} vs {baseline.brier:.3f} (p={brier_p:.2g})",
    ]
    if relationship_p_value is not None:
        parts.append(f"label-given-features change p={rel_p:.2g}")
    drop = auc_bad or brier_bad or rel_bad
    reason = ("quality drop: " if drop else "quality holds: ") + "; ".join(parts)
    return QualityDecision(drop, reason, auc_drop, auc_p, brier_rise, brier_p, rel_p)


def relationship_drift_pvalue(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    config: QualityConfig | None = None,
    reference_llf: float | None = None,
) -> float:
    """Likelihood-ratio p-value that P(label | features) differs between the two windows.

    The alternative (every coefficient may differ in the current window) is the same as one
    logistic fit per window, so its log-likelihood is the sum of the two fits' and the
    reference's can be computed once (:func:`label_model_llf`) for many current windows.

    Args:
        reference: Labelled reference window with ``config.features``.
        current: Labelled current window.
        config: The features to condition on.
        reference_llf: ``label_model_llf(reference, config)``, if already known.

    Returns:
        The p-value (small: the relationship the model learned has changed).
    """
    from scipy.stats import chi2

    config = config or QualityConfig()
    if reference_llf is None:
        reference_llf = label_model_llf(reference, config)
    pooled = label_model_llf(pd.concat([reference, current], ignore_index=True), config)
    statistic = 2 * (reference_llf + label_model_llf(current, config) - pooled)
    n_params = _label_design(current, config.features).shape[1] + 1
    return float(chi2.sf(max(statistic, 0.0), n_params))


def label_model_llf(frame: pd.DataFrame, config: QualityConfig | None = None) -> float:
    """Maximised log-likelihood of a logistic regression of the label on the features."""
    import statsmodels.api as sm

    config = config or QualityConfig()
    design = sm.add_constant(_label_design(frame, config.features), has_constant="add")
    fit = sm.Logit(frame[LABEL].to_numpy(dtype=float), design).fit(
        disp=0, method="newton", maxiter=50
    )
    return float(fit.llf)


def _label_design(frame: pd.DataFrame, features: tuple[str, ...]) -> np.ndarray:
    design = frame[list(features)].astype(float)
    # Money amounts act on risk multiplicatively: log them, and add the loan-to-income ratio.
    for column in set(features) & {"income", "credit_limit", "txn_amount_30d", "loan_amount"}:
        design[column] = np.log1p(design[column].clip(lower=0))
    if {"loan_amount", "income"} <= set(features):
        design["loan_to_income"] = frame["loan_amount"] / frame["income"]
    values = design.to_numpy()
    return (values - values.mean(0)) / np.where(values.std(0) > 0, values.std(0), 1.0)


def _one_sided_p(difference: float, se: float) -> float:
    if not se or math.isnan(se):
        return math.nan
    from scipy.stats import norm

    return float(norm.sf(difference / se))
