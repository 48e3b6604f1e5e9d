"""Train candidate models on a point-in-time training set, each as a tracked MLflow run.

Every candidate is a scikit-learn Pipeline (imputation for values past their TTL, scaling
where the model needs it, the estimator), so one artifact carries all preprocessing and serves
the same everywhere. Runs record parameters, holdout metrics, the lineage tags and the model.
"""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from ml.config import CandidateConfig, PipelineConfig
from ml.evaluate import classification_metrics
from ml.lineage import Lineage

LABEL = "defaulted"
EXPERIMENT = "credit-risk"
ROW_ID = "application_id"
# Each run's probabilities on its holdout rows, so runs can be compared pairwise on the same
# rows (``mlops experiments compare``); columns: ROW_ID, LABEL, "probability".
HOLDOUT_PREDICTIONS_ARTIFACT = "holdout/predictions.parquet"
# skops refuses to load types it does not know; these are the scikit-learn internals of the
# candidates above (HistGradientBoosting's tree predictor and its loss), trusted explicitly.
SKOPS_TRUSTED_TYPES = [
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
]


@dataclass(frozen=True)
class CandidateResult:
    name: str
    run_id: str
    metrics: dict[str, float]
    model: Pipeline


def build_model(candidate: CandidateConfig, seed: int) -> Pipeline:
    """An unfitted pipeline for ``candidate``."""
    steps: list = [("impute", SimpleImputer(strategy="median"))]
    if candidate.kind == "logistic_regression":
        steps += [("scale", StandardScaler()), ("model", LogisticRegression(**candidate.params))]
    elif candidate.kind == "random_forest":
        steps.append(("model", RandomForestClassifier(random_state=seed, **candidate.params)))
    else:
        steps.append(
            ("model", HistGradientBoostingClassifier(random_state=seed, **candidate.params))
        )
    return Pipeline(steps)


def time_split(frame: pd.DataFrame, holdout_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on the earlier applications and hold out the latest ones (no look-ahead)."""
    ordered = frame.sort_values(["event_timestamp", "application_id"], kind="stable")
    cut = int(len(ordered) * (1 - holdout_fraction))
    return ordered.iloc[:cut], ordered.iloc[cut:]


def train_candidates(
    training_set: pd.DataFrame,
    features: list[str],
    config: PipelineConfig,
    lineage: Lineage,
) -> list[CandidateResult]:
    """Fit and log every configured candidate; return their holdout results."""
    train, holdout = time_split(training_set, config.split.holdout_fraction)
    mlflow.set_experiment(EXPERIMENT)
    return [
        _fit_and_log(name, candidate, train, holdout, features, config, lineage)
        for name, candidate in config.candidates.items()
    ]


def _fit_and_log(name, candidate, train, holdout, features, config, lineage) -> CandidateResult:
    model = build_model(candidate, lineage.seed)
    with mlflow.start_run(run_name=name, tags={**lineage.tags(), "candidate": name}) as run:
        model.fit(train[features], train[LABEL].to_numpy())
        score = model.predict_proba(holdout[features])[:, 1]
        metrics = classification_metrics(holdout[LABEL], score, config.decision_threshold)
        mlflow.log_params({"kind": candidate.kind, **candidate.params})
        mlflow.log_params(
            {
                "features": ",".join(features),
                "train_rows": len(train),
                "holdout_rows": len(holdout),
            }
        )
        mlflow.log_metrics(metrics)
        log_holdout_predictions(holdout, score)
        log_model(model, train[features].head(5))
    return CandidateResult(name, run.info.run_id, metrics, model)


def log_holdout_predictions(holdout: pd.DataFrame, score: np.ndarray) -> None:
    """Log the active run's probability for each holdout row (a few KB of Parquet)."""
    import tempfile
    from pathlib import Path

    frame = pd.DataFrame(
        {
            ROW_ID: holdout[ROW_ID].to_numpy(),
            LABEL: holdout[LABEL].to_numpy(),
            "probability": score,
        }
    )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / Path(HOLDOUT_PREDICTIONS_ARTIFACT).name
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(
            str(path), artifact_path=str(Path(HOLDOUT_PREDICTIONS_ARTIFACT).parent)
        )


def log_model(model: Pipeline, example: pd.DataFrame) -> None:
    """Log ``model`` to the active run with its signature; the pyfunc returns probabilities."""
    signature = infer_signature(example, model.predict_proba(example)[:, 1].astype(np.float64))
    mlflow.sklearn.log_model(
        model,
        name="model",
        signature=signature,
        input_example=example,
        pyfunc_predict_fn="predict_proba",
        skops_trusted_types=SKOPS_TRUSTED_TYPES,
    )
