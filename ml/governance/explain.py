"""Explanations a non-engineer can read: what the model relies on, and why one case scored high.

* **Global**: scikit-learn's permutation importance on the holdout — how much the model's ranking
  quality (ROC AUC) drops when one feature's values are shuffled, i.e. how much it relies on it.
* **Per prediction**: replace-with-typical contributions. For one application, each feature in
  turn is set to its training median (a "typical" value) and the change in predicted risk is
  that feature's contribution. It is simple and exact about what it measures; it is not an
  additive decomposition (interactions mean the contributions need not sum to the difference
  from a typical applicant), and the card says so. SHAP is not used: it is not a dependency and
  would add little for models this small.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance

# Plain names for the features, for readers who do not know the column names.
FEATURE_DESCRIPTIONS = {
    "income": "yearly income",
    "employment_years": "years in employment",
    "num_open_accounts": "number of open accounts",
    "credit_limit": "total credit limit",
    "txn_count_30d": "transactions in the last 30 days",
    "txn_amount_30d": "amount spent in the last 30 days",
    "utilization": "share of the credit limit in use",
    "late_payments_90d": "late payments in the last 90 days",
    "loan_amount": "requested loan amount",
    "term_months": "loan term in months",
    "loan_to_income": "loan amount relative to income",
    "payment_to_income": "yearly repayment relative to income",
}


@dataclass(frozen=True)
class GlobalImportance:
    table: pd.DataFrame  # feature, importance_mean, importance_std; most important first
    summary: str


@dataclass(frozen=True)
class CaseExplanation:
    case_id: str
    label: str  # why this case was picked
    score: float
    baseline_score: float
    contributions: pd.DataFrame  # feature, value, typical, contribution; largest effect first
    summary: str


def describe(feature: str) -> str:
    return FEATURE_DESCRIPTIONS.get(feature, feature.replace("_", " "))


def global_importance(
    model, X: pd.DataFrame, y: np.ndarray, repeats: int, seed: int, top: int = 4
) -> GlobalImportance:
    """Permutation importance on ROC AUC, with a one-paragraph summary."""
    result = permutation_importance(
        model, X, y, scoring="roc_auc", n_repeats=repeats, random_state=seed, n_jobs=1
    )
    table = (
        pd.DataFrame(
            {
                "feature": X.columns,
                "importance_mean": result.importances_mean,
                "importance_std": result.importances_std,
            }
        )
        .sort_values("importance_mean", ascending=False)
        .reset_index(drop=True)
    )
    return GlobalImportance(table, _global_summary(table, top))


def _global_summary(table: pd.DataFrame, top: int) -> str:
    leaders = table.head(top)
    parts = [
        f"{describe(r.feature)} (AUC drops by {r.importance_mean:.3f} without it)"
        for r in leaders.itertuples()
    ]
    unused = table[table["importance_mean"].abs() < 0.002]["feature"].map(describe).tolist()
    text = "The model relies most on " + "; ".join(parts) + "."
    if unused:
        text += " It makes almost no use of " + ", ".join(unused) + "."
    return text


def pick_cases(score: np.ndarray, threshold: float, n: int, seed: int) -> list[tuple[int, str]]:
    """Positions of sample cases: the riskiest, one at the decision boundary, the safest, more."""
    candidates = [
        (int(np.argmax(score)), "highest predicted risk"),
        (int(np.argmin(np.abs(score - threshold))), "closest to the decision threshold"),
        (int(np.argmin(score)), "lowest predicted risk"),
    ]
    rng = np.random.default_rng(seed)
    candidates += [(int(p), "a random application") for p in rng.permutation(len(score))[:n]]
    picks: dict[int, str] = {}
    for position, label in candidates:
        if len(picks) < n:
            picks.setdefault(position, label)
    return list(picks.items())


def explain_case(
    model,
    row: pd.DataFrame,
    typical: pd.Series,
    *,
    case_id: str,
    label: str,
    threshold: float,
    top: int = 4,
) -> CaseExplanation:
    """Replace-with-typical contributions of each feature to one prediction.

    Args:
        model: a fitted classifier with ``predict_proba``.
        row: a one-row frame of model features.
        typical: the training medians of the features (the "typical applicant").
        case_id: shown in the card (the application id).
        label: why the case was picked.
        threshold: the decision threshold, for the verdict in the summary.
        top: how many features the summary names.
    """
    features = list(row.columns)
    variants = pd.concat([row] * (len(features) + 1), ignore_index=True)
    for i, feature in enumerate(features, start=1):
        variants.loc[i, feature] = typical[feature]
    scores = model.predict_proba(variants)[:, 1]
    baseline = float(model.predict_proba(typical.to_frame().T[features].astype(float))[:, 1][0])
    table = pd.DataFrame(
        {
            "feature": features,
            "value": row.iloc[0].to_numpy(),
            "typical": typical[features].to_numpy(),
            "contribution": scores[0] - scores[1:],
        }
    )
    table = table.reindex(table["contribution"].abs().sort_values(ascending=False).index)
    table = table.reset_index(drop=True)
    summary = _case_summary(float(scores[0]), baseline, table, threshold, top)
    return CaseExplanation(case_id, label, float(scores[0]), baseline, table, summary)


def _case_summary(
    score: float, baseline: float, table: pd.DataFrame, threshold: float, top: int
) -> str:
    verdict = "flagged as likely to default" if score >= threshold else "not flagged"
    text = (
        f"Estimated default risk {score:.0%} ({verdict}; the threshold is {threshold:.0%}). "
        f"A typical applicant scores {baseline:.0%}."
    )
    reasons = []
    for r in table.head(top).itertuples():
        if abs(r.contribution) < 0.005:
            continue
        direction = "raised" if r.contribution > 0 else "lowered"
        reasons.append(
            f"{describe(r.feature)} of {_fmt(r.value)} (typical {_fmt(r.typical)}) {direction} "
            f"it by {_points(r.contribution)}"
        )
    if reasons:
        text += " Main reasons: " + "; ".join(reasons) + "."
    else:
        text += " No single feature moves this prediction by more than half a point."
    return text


def _fmt(value: float) -> str:
    if pd.isna(value):
        return "missing"
    value = float(value)
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def plot_global(importance: GlobalImportance, path: Path) -> Path:
    """Horizontal bars of permutation importance with their spread over repeats."""
    from matplotlib.figure import Figure

    table = importance.table
    figure = Figure(figsize=(8, 0.6 + 0.35 * len(table)), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(table))
    ax.barh(positions, table["importance_mean"], xerr=table["importance_std"], color="tab:blue")
    ax.set_yticks(positions, [describe(f) for f in table["feature"]])
    ax.invert_yaxis()
    ax.set_xlabel("drop in ROC AUC when the feature is shuffled")
    ax.set_title("What the model relies on (permutation importance, holdout)")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def plot_case(case: CaseExplanation, path: Path, top: int = 8) -> Path:
    """Bars of each feature's contribution to one prediction: red raises risk, green lowers."""
    from matplotlib.figure import Figure

    table = case.contributions.head(top)
    figure = Figure(figsize=(8, 0.8 + 0.4 * len(table)), layout="constrained")
    ax = figure.subplots()
    positions = np.arange(len(table))
    colors = ["tab:red" if c > 0 else "tab:green" for c in table["contribution"]]
    ax.barh(positions, table["contribution"] * 100, color=colors)
    ax.set_yticks(
        positions, [f"{describe(r.feature)} = {_fmt(r.value)}" for r in table.itertuples()]
    )
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("change in predicted default risk (percentage points) vs. a typical value")
    ax.set_title(f"Application {case.case_id}: risk {case.score:.0%} ({case.label})")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path


def _points(contribution: float) -> str:
    points = round(abs(contribution) * 100)
    return "1 point" if points == 1 else f"{points} points"
