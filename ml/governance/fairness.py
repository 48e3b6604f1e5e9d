"""Fairness of a credit model across protected attributes and their intersections.

The model's positive prediction is "will default": the applicant is declined or priced up. For
each protected attribute (and each configured intersection, e.g. sex × age band) this computes,
per group, with fairlearn's ``MetricFrame``:

* selection rate — share of the group predicted to default;
* true positive rate — share of actual defaulters the model flags;
* false positive rate — share of good payers the model wrongly flags (the costly error for an
  applicant);

and over the groups large enough to be meaningful (``min_group_size``) fairlearn's demographic
parity difference (largest gap in selection rate) and equalized odds difference (the larger of
the TPR and FPR gaps). Confidence intervals come from a percentile bootstrap over applications
(vectorised in numpy; the point estimates are fairlearn's). :func:`fairness_gate` compares the
gaps with the bounds in ``governance.yaml``: it is part of the promotion gate.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from fairlearn.metrics import (
    MetricFrame,
    count,
    demographic_parity_difference,
    equalized_odds_difference,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)

from ml.evaluate import GateDecision
from ml.governance.config import FairnessConfig

GROUP_SEPARATOR = " / "


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def text(self, digits: int = 3) -> str:
        if np.isnan(self.value):
            return "n/a"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


@dataclass(frozen=True)
class GroupRates:
    group: str
    count: int
    positives: int  # actual defaulters in the group
    selection_rate: Interval
    true_positive_rate: Interval
    false_positive_rate: Interval
    gated: bool  # large enough to count in the selection-rate gap
    gated_error_rates: bool  # and enough defaulters and good payers to count in the TPR/FPR gap

    def gate_note(self) -> str:
        if self.gated_error_rates:
            return "yes"
        if self.gated:
            return "selection rate only (few defaulters or good payers)"
        return "no (too small)"


@dataclass(frozen=True)
class AttributeFairness:
    attributes: tuple[str, ...]
    groups: list[GroupRates]
    demographic_parity_difference: Interval
    equalized_odds_difference: Interval

    @property
    def name(self) -> str:
        return " × ".join(self.attributes)

    @property
    def intersection(self) -> bool:
        return len(self.attributes) > 1


@dataclass(frozen=True)
class FairnessReport:
    threshold: float
    confidence_level: float
    rows: int
    results: list[AttributeFairness]

    def to_dict(self) -> dict:
        return asdict(self)


def fairness_report(
    y_true: np.ndarray,
    score: np.ndarray,
    sensitive: pd.DataFrame,
    config: FairnessConfig,
    threshold: float,
    seed: int = 0,
) -> FairnessReport:
    """Group rates and gaps, with bootstrap intervals, for every configured attribute set.

    Args:
        y_true: actual labels (1 = defaulted).
        score: predicted default probabilities.
        sensitive: the protected attributes, one row per prediction.
        config: attributes, intersections, minimum group size, bootstrap settings.
        threshold: the decision threshold that turns a score into "predicted to default".
        seed: seeds the bootstrap.
    """
    y = np.asarray(y_true).astype(int)
    predicted = (np.asarray(score) >= threshold).astype(int)
    attribute_sets = [(a,) for a in config.protected_attributes] + [
        tuple(i) for i in config.intersections
    ]
    missing = sorted({a for s in attribute_sets for a in s} - set(sensitive.columns))
    if missing:
        raise ValueError(f"protected attributes {missing} are not in the evaluation data")
    rng = np.random.default_rng(seed)
    samples = rng.integers(0, len(y), size=(config.bootstrap_samples, len(y)))
    results = [
        _attribute_fairness(cols, y, predicted, _groups(sensitive, cols), samples, config)
        for cols in attribute_sets
    ]
    return FairnessReport(threshold, config.confidence_level, len(y), results)


def fairness_gate(report: FairnessReport, config: FairnessConfig) -> GateDecision:
    """Pass only if every gap is within its bound.

    With ``gate_on: point`` the estimate is compared with the bound; with ``ci_lower`` the low
    end of its confidence interval, so a gap fails only when the data show it exceeds the bound.

    Returns:
        The decision, with one reason per gap over its bound.
    """
    reasons = []
    for name, label, gap, bound in _gaps(report, config):
        value = gap.value if config.gate_on == "point" else gap.low
        if np.isnan(value):
            reasons.append(f"{name}: {label} cannot be computed (groups too small)")
        elif value > bound:
            basis = "" if config.gate_on == "point" else " (even the CI's low end)"
            reasons.append(f"{name}: {label} {gap.text()} > {bound}{basis}")
    return GateDecision(passed=not reasons, reasons=reasons)


def fairness_warnings(report: FairnessReport, config: FairnessConfig) -> list[str]:
    """Gaps whose point estimate is over the bound although the gate did not fail on them.

    Under ``gate_on: ci_lower`` these are gaps the data cannot yet confirm: a reviewer should
    read them before approving.
    """
    return [
        f"{name}: {label} {gap.text()} has its estimate over the bound {bound}, but its "
        "interval reaches below it"
        for name, label, gap, bound in _gaps(report, config)
        if gap.value > bound and not gap.low > bound and config.gate_on == "ci_lower"
    ]


def _gaps(report: FairnessReport, config: FairnessConfig):
    for result in report.results:
        bounds = config.bounds_for(result.attributes)
        yield (
            result.name,
            "demographic parity difference",
            result.demographic_parity_difference,
            bounds.demographic_parity_difference,
        )
        yield (result.name, "equalized odds difference",
               result.equalized_odds_difference, bounds.equalized_odds_difference)  # fmt: skip


def _groups(sensitive: pd.DataFrame, cols: tuple[str, ...]) -> pd.Series:
    labels = sensitive[list(cols)].astype(str).agg(GROUP_SEPARATOR.join, axis=1)
    return labels.reset_index(drop=True)


def _attribute_fairness(cols, y, predicted, groups, samples, config) -> AttributeFairness:
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "count": count,
        },
        y_true=y,
        y_pred=predicted,
        sensitive_features=groups,
    )
    by_group = frame.by_group
    names = sorted(by_group.index.astype(str))
    codes = groups.map({name: i for i, name in enumerate(names)}).to_numpy()
    boot = _bootstrap_rates(y, predicted, codes, len(names), samples)
    counts = by_group["count"].reindex(names).to_numpy()
    positives = pd.Series(y).groupby(groups).sum().reindex(names).to_numpy()
    sized = counts >= config.min_group_size
    outcomes = np.minimum(positives, counts - positives) >= config.min_group_outcomes
    eligible = [int(i) for i in np.flatnonzero(sized)]
    eligible_errors = [int(i) for i in np.flatnonzero(sized & outcomes)]
    level = config.confidence_level
    group_rates = [
        GroupRates(
            group=name,
            count=int(counts[i]),
            positives=int(positives[i]),
            selection_rate=_interval(by_group.loc[name, "selection_rate"], boot[0][:, i], level),
            true_positive_rate=_interval(by_group.loc[name, "tpr"], boot[1][:, i], level),
            false_positive_rate=_interval(by_group.loc[name, "fpr"], boot[2][:, i], level),
            gated=i in eligible,
            gated_error_rates=i in eligible_errors,
        )
        for i, name in enumerate(names)
    ]
    dp, eo = _differences(y, predicted, groups, names, eligible, eligible_errors)
    boot_dp, boot_eo = _boot_differences(boot, eligible, eligible_errors)
    return AttributeFairness(
        cols, group_rates, _interval(dp, boot_dp, level), _interval(eo, boot_eo, level)
    )


def _differences(y, predicted, groups, names, eligible, eligible_errors) -> tuple[float, float]:
    """fairlearn's gaps over the eligible groups only (small groups would dominate by noise)."""

    def rows_of(indices: list[int]) -> np.ndarray:
        return groups.isin([names[i] for i in indices]).to_numpy()

    dp = eo = float("nan")
    if len(eligible) >= 2:
        keep = rows_of(eligible)
        dp = demographic_parity_difference(
            y[keep], predicted[keep], sensitive_features=groups[keep]
        )
    if len(eligible_errors) >= 2:
        keep = rows_of(eligible_errors)
        eo = equalized_odds_difference(y[keep], predicted[keep], sensitive_features=groups[keep])
    return float(dp), float(eo)


def _bootstrap_rates(y, predicted, codes, n_groups, samples) -> tuple[np.ndarray, ...]:
    """Per bootstrap sample and group: selection rate, TPR, FPR (NaN where undefined)."""
    ys, ps, gs = y[samples], predicted[samples], codes[samples]
    shape = (samples.shape[0], n_groups)
    selection, tpr, fpr = np.full(shape, np.nan), np.full(shape, np.nan), np.full(shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        for g in range(n_groups):
            member = gs == g
            pos, neg = member & (ys == 1), member & (ys == 0)
            selection[:, g] = (ps * member).sum(1) / member.sum(1)
            tpr[:, g] = (ps * pos).sum(1) / pos.sum(1)
            fpr[:, g] = (ps * neg).sum(1) / neg.sum(1)
    return selection, tpr, fpr


def _boot_differences(boot, eligible, eligible_errors) -> tuple[np.ndarray, np.ndarray]:
    selection, tpr, fpr = boot

    def gap(rates: np.ndarray, columns: list[int]) -> np.ndarray:
        if len(columns) < 2:
            return np.full(rates.shape[0], np.nan)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows are expected
            return np.nanmax(rates[:, columns], axis=1) - np.nanmin(rates[:, columns], axis=1)

    return gap(selection, eligible), np.fmax(gap(tpr, eligible_errors), gap(fpr, eligible_errors))


def _interval(value: float, samples: np.ndarray, level: float) -> Interval:
    finite = samples[np.isfinite(samples)]
    if finite.size == 0 or not np.isfinite(value):
        return Interval(float(value), float("nan"), float("nan"))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return Interval(float(value), float(low), float(high))


def plot_fairness(report: FairnessReport, out_dir: Path) -> list[Path]:
    """One PNG per attribute set: selection rate, TPR and FPR per group with their intervals."""
    from matplotlib.figure import Figure

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for result in report.results:
        figure = Figure(figsize=(11, 0.9 + 0.38 * len(result.groups)), layout="constrained")
        axes = figure.subplots(1, 3, sharey=True)
        labels = [f"{g.group} (n={g.count})" for g in result.groups]
        for ax, (title, attr) in zip(axes, _RATE_PANELS, strict=True):
            _rate_panel(ax, result.groups, attr, labels, title)
        figure.suptitle(f"Fairness by {result.name} (bars: {report.confidence_level:.0%} CI)")
        path = out_dir / f"fairness_{'_x_'.join(result.attributes)}.png"
        figure.savefig(path, dpi=110)
        paths.append(path)
    return paths


_RATE_PANELS = (
    ("selection rate (predicted default)", "selection_rate"),
    ("true positive rate", "true_positive_rate"),
    ("false positive rate", "false_positive_rate"),
)


def _rate_panel(ax, groups: list[GroupRates], attr: str, labels: list[str], title: str) -> None:
    intervals = [getattr(g, attr) for g in groups]
    values = np.array([i.value for i in intervals], dtype=float)
    errors = np.array(
        [[max(i.value - i.low, 0), max(i.high - i.value, 0)] for i in intervals], dtype=float
    ).T
    gated = [g.gated if attr == "selection_rate" else g.gated_error_rates for g in groups]
    colors = ["tab:blue" if g else "lightgray" for g in gated]
    positions = np.arange(len(groups))
    ax.barh(positions, np.nan_to_num(values), xerr=np.nan_to_num(errors), color=colors)
    ax.set_yticks(positions, labels)
    ax.set_xlim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.invert_yaxis()
