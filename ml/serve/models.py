"""Resolve, check and load the model versions a traffic policy names.

Governance marks versions with the tag ``governance.status``; serving refuses anything that is
not ``approved`` or ``production`` while ``MLOPS_REQUIRE_APPROVAL`` is on (the default), so an
unreviewed model can never take live or shadow traffic by a typo in the policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ml.errors import UserError
from ml.governance.approvals import STATUS_TAG as GOVERNANCE_TAG  # noqa: F401 (re-exported)


def approval_required() -> bool:
    """``MLOPS_REQUIRE_APPROVAL`` (default true), validated with every other setting."""
    from ml.settings import get_settings

    return get_settings().require_approval


def ensure_servable(model_version: Any) -> None:
    """Refuse a model version governance has not approved (when approval is required).

    Args:
        model_version: An MLflow ``ModelVersion`` (anything with ``name``, ``version``, ``tags``).

    Raises:
        UserError: The version's ``governance.status`` tag is not approved/production.
    """
    if approval_required():
        from ml.governance.approvals import servable_status

        servable_status(model_version)


@dataclass
class LoadedModel:
    """A servable model: where it came from and a fast ``score(X) -> P(default)``."""

    name: str
    version: str
    features: list[str]
    estimator: Any
    is_sklearn: bool = True
    fast: Any = None  # compiled numpy scorer, when the pipeline is one we can compile exactly

    def score(self, rows: np.ndarray) -> np.ndarray:
        """Default probabilities for a 2-D float array whose columns are ``features``."""
        if self.fast is not None:
            return self.fast(rows)
        if self.is_sklearn:
            return self.estimator.predict_proba(rows)[:, 1]
        import pandas as pd

        out = self.estimator.predict(pd.DataFrame(rows, columns=self.features))
        return np.asarray(out, dtype=np.float64).reshape(-1)


def resolve_version(model_name: str, ref: str):
    """The registry version for an alias (``champion``) or a version number (``3``)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        if ref.isdigit():
            return client.get_model_version(model_name, ref)
        return client.get_model_version_by_alias(model_name, ref)
    except MlflowException:
        raise UserError(
            f"model {model_name}@{ref} is not in the registry at {_tracking_uri()}",
            "train and register a model (`mlops demo`) or fix the traffic policy",
        ) from None


def load_model(model_name: str, ref: str, features: list[str]) -> LoadedModel:
    """Resolve ``ref``, check governance, load the model for fast numpy scoring."""
    return load_version(resolve_version(model_name, ref), features)


def load_version(version: Any, features: list[str]) -> LoadedModel:
    """Check governance for a resolved registry ``version`` and load it for scoring."""
    ensure_servable(version)
    model_name = version.name
    uri = f"models:/{model_name}/{version.version}"
    estimator, is_sklearn = _load(uri)
    fast = None
    if is_sklearn:
        from ml.settings import get_settings

        drop_feature_names(estimator, features, uri)
        if get_settings().serving_compile_models:
            fast = compile_linear_pipeline(estimator)
    return LoadedModel(model_name, str(version.version), features, estimator, is_sklearn, fast)


def compile_linear_pipeline(estimator: Any, check_rows: int = 256, seed: int = 0):
    """A numpy scorer equal to ``predict_proba[:, 1]`` for impute → [scale] → logistic.

    scikit-learn validates its input in every step of every call; for a one-row request that
    costs ~10x the arithmetic (profiled: docs/serving.md). For the pipeline shape our linear
    candidates have, the same arithmetic is a fill, an affine map and a sigmoid. The compiled
    function is checked against scikit-learn on random rows with missing values and used only
    if it agrees to 1e-9; anything else (trees, other steps) keeps scikit-learn's own path.

    Returns:
        ``f(rows) -> probabilities``, or None when the pipeline is not of that shape.
    """
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    steps = [s for _, s in getattr(estimator, "steps", [])]
    if len(steps) not in (2, 3) or not isinstance(steps[0], SimpleImputer):
        return None
    impute, model = steps[0], steps[-1]
    scale = steps[1] if len(steps) == 3 else None
    if not isinstance(model, LogisticRegression) or model.coef_.shape[0] != 1:
        return None
    if scale is not None and not isinstance(scale, StandardScaler):
        return None
    if impute.add_indicator or not np.isnan(impute.missing_values):
        return None
    fill = np.asarray(impute.statistics_, dtype=np.float64)
    weights = model.coef_[0].astype(np.float64)
    bias = float(model.intercept_[0])
    if scale is not None:
        mean = scale.mean_ if scale.with_mean else np.zeros_like(fill)
        std = scale.scale_ if scale.with_std else np.ones_like(fill)
        weights = weights / std  # fold the scaler into the linear map
        bias = bias - float(np.dot(mean, weights))

    def score(rows: np.ndarray) -> np.ndarray:
        filled = np.where(np.isnan(rows), fill, rows)
        return 1.0 / (1.0 + np.exp(-(filled @ weights + bias)))

    rng = np.random.default_rng(seed)
    spread = np.abs(fill) + 1.0
    probe = fill + rng.normal(size=(check_rows, fill.size)) * spread
    probe[rng.random(probe.shape) < 0.1] = np.nan
    if not np.allclose(score(probe), estimator.predict_proba(probe)[:, 1], rtol=0, atol=1e-9):
        return None
    return score


def _load(uri: str) -> tuple[Any, bool]:
    import mlflow

    try:
        return mlflow.sklearn.load_model(uri), True
    except Exception:  # not a scikit-learn flavour: serve it through pyfunc (slower path)
        return mlflow.pyfunc.load_model(uri), False


def drop_feature_names(estimator: Any, features: list[str], uri: str) -> None:
    """Verify column order once, then drop the names so numpy rows score without warnings.

    scikit-learn compares column names on every call and warns when given a numpy array; the
    request path builds rows in the verified order, so the per-call check is pure overhead.
    """
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None and list(names) != list(features):
        raise UserError(
            f"{uri} was trained on columns {list(names)}, serving builds {features}",
            "serve it with the feature service it was trained with (MLOPS_FEATURE_SERVICE)",
        )
    steps = [s for _, s in getattr(estimator, "steps", [])] or [estimator]
    for step in steps:
        if "feature_names_in_" in vars(step):
            del step.feature_names_in_


def _tracking_uri() -> str:
    import mlflow

    return mlflow.get_tracking_uri()
