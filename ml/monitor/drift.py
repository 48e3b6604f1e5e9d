"""Data, prediction and target drift: one test per column, one correction across the family.

The monitored *family* is every model feature, plus the predicted score and the label when both
frames carry them. Each column gets a two-sample test that returns a p-value (Kolmogorov–Smirnov
for numbers, including counts and the ordinal loan term; a two-proportion z-test for binary
columns; chi-square for other categories), computed by Evidently's ``ValueDrift`` metric. The
p-values are then corrected together with Benjamini–Hochberg at ``alpha``: under no drift at all,
the chance that *any* column fires is at most ``alpha`` (the Simes bound), which is what keeps
the alarm rate of the whole monitor at ``alpha`` instead of ``1 - (1 - alpha) ** 12``. The list of
drifted columns controls the false discovery rate at ``alpha``. See ``docs/monitoring.md`` for the
measured rates.

``engine="scipy"`` computes the same tests with the SciPy calls Evidently makes, without building
Evidently's plots; the evaluation uses it to test thousands of windows and checks on a few windows
that both engines give the same p-values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from ml.data.generate import FEATURE_COLUMNS, LABEL
from ml.errors import UserError

Correction = Literal["bh", "bonferroni", "none"]
Engine = Literal["evidently", "scipy"]
Role = Literal["feature", "prediction", "target"]


class DriftConfig(BaseModel):
    """How drift is tested; every default of the monitor lives here."""

    model_config = ConfigDict(frozen=True)

    features: tuple[str, ...] = Field(default=FEATURE_COLUMNS, description="Model inputs to test.")
    prediction_column: str = Field(
        default="score", description="Predicted probability, if logged."
    )
    target_column: str = Field(
        default=LABEL, description="Label, tested when both frames carry it."
    )
    alpha: float = Field(default=0.01, gt=0, lt=1, description="Family-wise level of the alarm.")
    correction: Correction = Field(default="bh", description="Multiple-testing correction.")
    num_method: str = Field(default="ks", description="Evidently test for numeric columns.")
    cat_method: str = Field(
        default="chisquare", description="Evidently test for categorical columns."
    )
    binary_method: str = Field(default="z", description="Evidently test for two-valued columns.")
    min_rows: int = Field(default=100, ge=10, description="Fewer rows in a frame is a user error.")
    engine: Engine = Field(default="evidently", description="Who computes the p-values.")


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: its p-value and whether it survived the correction."""

    column: str
    role: Role
    method: str
    p_value: float
    drifted: bool


@dataclass(frozen=True)
class DriftResult:
    """The verdicts of one reference/current comparison."""

    columns: tuple[ColumnDrift, ...]
    threshold: float  # corrected p-value cut-off: a column drifted iff p <= threshold
    alpha: float
    correction: Correction
    n_reference: int
    n_current: int

    def _role(self, role: Role) -> list[ColumnDrift]:
        return [c for c in self.columns if c.role == role]

    @property
    def feature_pvalues(self) -> dict[str, float]:
        return {c.column: c.p_value for c in self._role("feature")}

    @property
    def drifted_features(self) -> list[str]:
        return [c.column for c in self._role("feature") if c.drifted]

    @property
    def drift_share(self) -> float:
        """Share of features that drifted after the correction."""
        features = self._role("feature")
        return len(self.drifted_features) / len(features) if features else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.drifted_features)

    @property
    def prediction(self) -> ColumnDrift | None:
        found = self._role("prediction")
        return found[0] if found else None

    @property
    def prediction_drift(self) -> bool:
        return bool(self.prediction and self.prediction.drifted)

    @property
    def target_drift(self) -> bool:
        return any(c.drifted for c in self._role("target"))

    @property
    def drift_detected(self) -> bool:
        """The alarm: any column of the family drifted (family-wise level ``alpha``)."""
        return any(c.drifted for c in self.columns)

    def verdict(self) -> str:
        """One line for logs and the CLI."""
        if not self.drift_detected:
            smallest = min(self.columns, key=lambda c: c.p_value)
            return (
                f"no drift: {len(self.columns)} columns, smallest p={smallest.p_value:.2g} "
                f"({smallest.column}) > corrected threshold {self.threshold:.2g}"
            )
        drifted = ", ".join(f"{c.column} (p={c.p_value:.2g})" for c in self.columns if c.drifted)
        return (
            f"DRIFT: {drifted}; feature drift share {self.drift_share:.0%}, "
            f"{self.correction} at alpha={self.alpha}"
        )

    def to_dict(self) -> dict:
        """JSON-ready form (the CLI's ``--json`` and the demo summary)."""
        return {
            "drift_detected": self.drift_detected,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "drifted_features": self.drifted_features,
            "prediction_drift": self.prediction_drift,
            "prediction_pvalue": self.prediction.p_value if self.prediction else None,
            "target_drift": self.target_drift,
            "threshold": self.threshold,
            "alpha": self.alpha,
            "correction": self.correction,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "columns": [c.__dict__ for c in self.columns],
        }


def detect(
    reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig | None = None
) -> DriftResult:
    """Test every monitored column of ``current`` against ``reference``.

    Args:
        reference: The window the model was validated on (features, optionally score and label).
        current: The window to check, with the same columns.
        config: Tests, level and correction; defaults to :class:`DriftConfig`.

    Returns:
        Per-column p-values and corrected decisions, and the dataset, prediction and target
        verdicts.

    Raises:
        UserError: A frame is too small or lacks a feature column.
    """
    config = config or DriftConfig()
    methods = column_methods(reference, current, config)
    engine = _pvalues_evidently if config.engine == "evidently" else _pvalues_scipy
    pvalues = engine(reference, current, methods)
    threshold = corrected_threshold(list(pvalues.values()), config.alpha, config.correction)
    columns = tuple(
        ColumnDrift(col, role, method, pvalues[col], bool(pvalues[col] <= threshold))
        for col, (role, method) in methods.items()
    )
    return DriftResult(
        columns, threshold, config.alpha, config.correction, len(reference), len(current)
    )


def corrected_threshold(pvalues: list[float], alpha: float, correction: Correction) -> float:
    """The p-value cut-off that applies ``correction`` to the family ``pvalues``.

    For Benjamini–Hochberg it is ``k * alpha / m`` for the largest ``k`` whose ``k``-th smallest
    p-value is below it (so exactly the BH rejections satisfy ``p <= cut-off``), and ``alpha / m``
    when nothing is rejected: the bar the smallest p-value failed to clear.
    """
    m = len(pvalues)
    if correction == "none" or m == 0:
        return alpha
    if correction == "bonferroni":
        return alpha / m
    ranked = np.sort(np.asarray(pvalues, dtype=float))
    passed = np.nonzero(ranked <= alpha * np.arange(1, m + 1) / m)[0]
    return alpha * (passed[-1] + 1) / m if passed.size else alpha / m


def column_methods(
    reference: pd.DataFrame, current: pd.DataFrame, config: DriftConfig
) -> dict[str, tuple[Role, str]]:
    """The monitored family, ``{column: (role, test)}``, after checking both frames."""
    for name, frame in (("reference", reference), ("current", current)):
        missing = [c for c in config.features if c not in frame.columns]
        if missing:
            raise UserError(
                f"the {name} data lacks feature column(s) {', '.join(missing)}",
                "pass a frame with the model's features (see ml.data.generate.FEATURE_COLUMNS)",
            )
        if len(frame) < config.min_rows:
            raise UserError(
                f"the {name} data has {len(frame)} rows, fewer than {config.min_rows}",
                "use a longer window so that the drift tests have power",
            )
    roles: dict[str, Role] = dict.fromkeys(config.features, "feature")
    for column, role in (
        (config.prediction_column, "prediction"),
        (config.target_column, "target"),
    ):
        if column in reference.columns and column in current.columns:
            roles[column] = role  # type: ignore[assignment]
    # A column with no value at all in one window (a feature view not materialized for these
    # customers, labels not known yet) has nothing to compare: it is left out of the family,
    # not reported as drift (seen in the e2e; Evidently refuses empty columns).
    roles = {
        c: r for c, r in roles.items() if reference[c].notna().any() and current[c].notna().any()
    }
    return {col: (role, _method(reference[col], config)) for col, role in roles.items()}


def _method(values: pd.Series, config: DriftConfig) -> str:
    if values.nunique(dropna=True) <= 2:
        return config.binary_method
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return config.num_method
    return config.cat_method


def data_definition(methods: dict[str, tuple[Role, str]], num_method: str = "ks"):
    """Evidently's column typing for the family: numeric iff tested with a numeric test."""
    from evidently import DataDefinition

    categorical = [c for c, (_, m) in methods.items() if m in _CATEGORICAL_TESTS]
    numerical = [c for c in methods if c not in categorical]
    return DataDefinition(numerical_columns=numerical, categorical_columns=categorical)


# Evidently tests that only accept categorical columns.
_CATEGORICAL_TESTS = {"z", "chisquare", "fisher_exact", "g_test", "TVD"}


def evidently_datasets(
    reference: pd.DataFrame, current: pd.DataFrame, methods: dict[str, tuple[Role, str]]
):
    """Both frames as Evidently ``Dataset`` objects restricted to, and typed for, the family."""
    from evidently import Dataset

    definition = data_definition(methods)
    columns = list(methods)
    return (
        Dataset.from_pandas(reference[columns].reset_index(drop=True), data_definition=definition),
        Dataset.from_pandas(current[columns].reset_index(drop=True), data_definition=definition),
    )


def _pvalues_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, methods: dict[str, tuple[Role, str]]
) -> dict[str, float]:
    from evidently import Report
    from evidently.metrics import ValueDrift

    ref, cur = evidently_datasets(reference, current, methods)
    report = Report([ValueDrift(column=col, method=m) for col, (_, m) in methods.items()])
    metrics = report.run(cur, ref).dict()["metrics"]
    return {item["config"]["column"]: float(item["value"]) for item in metrics}


def _pvalues_scipy(
    reference: pd.DataFrame, current: pd.DataFrame, methods: dict[str, tuple[Role, str]]
) -> dict[str, float]:
    tests = {"ks": _ks, "z": _z, "chisquare": _chisquare}
    unknown = {m for _, m in methods.values()} - tests.keys()
    if unknown:
        raise UserError(
            f"the scipy engine has no test {sorted(unknown)}", "use engine='evidently'"
        )
    return {
        col: tests[m](_clean(reference[col]), _clean(current[col]))
        for col, (_, m) in methods.items()
    }


def _clean(values: pd.Series) -> pd.Series:
    # Evidently drops missing and infinite values before testing; do the same.
    return values.replace([np.inf, -np.inf], np.nan).dropna()


def _ks(ref: pd.Series, cur: pd.Series) -> float:
    from scipy.stats import ks_2samp

    return float(ks_2samp(ref.to_numpy(), cur.to_numpy())[1])


def _z(ref: pd.Series, cur: pd.Series) -> float:
    """Evidently's two-proportion z-test (pooled variance), coding the first level as 0."""
    from scipy.stats import norm

    keys = sorted(set(ref.unique()) | set(cur.unique()))
    if len(keys) == 1:
        return 1.0
    p1, p2 = (ref != keys[0]).mean(), (cur != keys[0]).mean()
    pooled = (p1 * len(ref) + p2 * len(cur)) / (len(ref) + len(cur))
    se = math.sqrt(pooled * (1 - pooled) * (1 / len(ref) + 1 / len(cur)))
    return float(2 * (1 - norm.cdf(abs(p1 - p2) / se)))


def _chisquare(ref: pd.Series, cur: pd.Series) -> float:
    """Evidently's chi-square: current counts against reference shares scaled to ``len(cur)``."""
    from scipy.stats import chisquare

    keys = list(set(ref.unique()) | set(cur.unique()))
    ref_counts = ref.value_counts().reindex(keys, fill_value=0).to_numpy()
    cur_counts = cur.value_counts().reindex(keys, fill_value=0).to_numpy()
    return float(chisquare(cur_counts, ref_counts * len(cur) / len(ref))[1])


def evidently_report_html(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    path: Path,
    config: DriftConfig | None = None,
    result: DriftResult | None = None,
) -> Path:
    """Write Evidently's own data-drift report, set up so that its verdicts are ours.

    Each column gets our test and the *corrected* cut-off as its threshold, and the dataset
    drift share is one column, so Evidently's page shows the same drifted columns and the same
    alarm as :func:`detect`.

    Args:
        reference: The reference window.
        current: The current window.
        path: Where to write the HTML page (parents are created).
        config: Drift settings; defaults to :class:`DriftConfig`.
        result: A result of :func:`detect` on the same frames, to avoid testing twice.

    Returns:
        ``path``.
    """
    from evidently import Report
    from evidently.presets import DataDriftPreset

    config = config or DriftConfig()
    result = result or detect(reference, current, config)
    methods = column_methods(reference, current, config)
    preset = DataDriftPreset(
        columns=list(methods),
        per_column_method={col: m for col, (_, m) in methods.items()},
        per_column_threshold=dict.fromkeys(methods, result.threshold),
        drift_share=1 / len(methods),
    )
    ref, cur = evidently_datasets(reference, current, methods)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Report([preset]).run(cur, ref).save_html(str(path))
    return path
