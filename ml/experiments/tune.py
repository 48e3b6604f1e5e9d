"""Hyperparameter search as an Optuna study whose trials are nested MLflow runs.

The parent run is the study; each trial is a child run holding the estimator's own parameters
(``get_params()``, so nothing is listed by hand), its inner-validation AUC per fold, and, when
it completes, the holdout metrics and holdout predictions that ``compare`` needs. The objective
is the mean ROC AUC over time-ordered folds of the *training* part only: the holdout is never
used to choose, so comparing the best trial with the champion on it stays honest. Optuna's
storage keeps only the sampler's state; re-running the same command resumes the study until it
has the requested number of finished trials, in the same parent run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import TimeSeriesSplit

from ml.config import CandidateConfig, PipelineConfig
from ml.errors import UserError
from ml.evaluate import classification_metrics
from ml.lineage import Lineage
from ml.train import EXPERIMENT, LABEL, build_model, log_holdout_predictions, log_model, time_split

PARENT_RUN_ATTR = "mlflow_parent_run_id"
TRIAL_RUN_ATTR = "mlflow_run_id"
STUDY_TAG = "optuna.study"
MODEL_TAG = "tune.model"  # set on the trial run the best model was logged to


def _logistic_space(trial) -> dict[str, Any]:
    return {"C": trial.suggest_float("C", 1e-3, 10.0, log=True)}


def _forest_space(trial) -> dict[str, Any]:
    return {
        "max_depth": trial.suggest_int("max_depth", 3, 14),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
        "max_features": trial.suggest_float("max_features", 0.3, 1.0),
    }


def _boosting_space(trial) -> dict[str, Any]:
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 7, 63, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-3, 10.0, log=True),
        "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 100, log=True),
    }


# Per model kind: the parameters searched (the candidate's other parameters stay as configured).
SEARCH_SPACES: dict[str, Callable[[Any], dict[str, Any]]] = {
    "logistic_regression": _logistic_space,
    "random_forest": _forest_space,
    "hist_gradient_boosting": _boosting_space,
}


@dataclass(frozen=True)
class TuneResult:
    study_name: str
    parent_run_id: str
    best_run_id: str | None
    best_value: float | None
    best_params: dict[str, Any]
    trials_run: int
    finished: int
    pruned: int


def tune(
    training_set: pd.DataFrame,
    features: list[str],
    candidate_name: str,
    config: PipelineConfig,
    lineage: Lineage,
    trials: int,
    storage: str,
    study_name: str | None = None,
    folds: int = 3,
    log_best_model: bool = True,
    log_models: bool = False,
) -> TuneResult:
    """Run (or resume) the study of ``candidate_name`` until it has ``trials`` finished trials.

    Args:
        training_set: the point-in-time training set (split like training: same holdout).
        features: model inputs.
        candidate_name: a candidate of ``config`` whose kind has a search space.
        config: the pipeline config (split, candidates, decision threshold).
        lineage: tags every trial run carries (its training-set hash makes trials comparable).
        trials: finished (complete or pruned) trials wanted in the study, counting earlier runs.
        storage: Optuna storage URL (e.g. ``sqlite:///build/experiments/optuna.db``).
        study_name: defaults to ``tune-<candidate>-<training set hash prefix>``.
        folds: time-ordered inner folds; pruning looks at each fold's running mean.
        log_best_model: refit the best parameters and log the model to the best trial's run.
        log_models: log every completed trial's model (as MLflow's autologging would).

    Raises:
        UserError: unknown candidate, or a storage Optuna cannot open.
    """
    import optuna

    candidate = _candidate(config, candidate_name)
    name = study_name or f"tune-{candidate_name}-{lineage.training_set_sha256[:12]}"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _open_study(name, storage, lineage.seed)
    done = _finished(study)
    train, holdout = time_split(training_set, config.split.holdout_fraction)
    mlflow.set_experiment(EXPERIMENT)
    parent_id = study.user_attrs.get(PARENT_RUN_ATTR)
    tags = {**lineage.tags(), "candidate": candidate_name, STUDY_TAG: name}
    with mlflow.start_run(
        run_id=parent_id, run_name=name, tags=None if parent_id else tags
    ) as run:
        study.set_user_attr(PARENT_RUN_ATTR, run.info.run_id)
        objective = _objective(
            candidate, train, holdout, features, config, lineage, tags, folds, log_models
        )
        if trials > done:
            study.optimize(objective, n_trials=trials - done, catch=())
        best = _best(study)
        if best is not None:
            mlflow.log_metric("best_inner_auc", best.value)
            mlflow.set_tag("tune.best_run_id", best.user_attrs[TRIAL_RUN_ATTR])
            if log_best_model:
                _log_best_model(best, candidate, train, features, lineage.seed)
    states = [t.state for t in study.trials]
    return TuneResult(
        study_name=name,
        parent_run_id=run.info.run_id,
        best_run_id=best.user_attrs[TRIAL_RUN_ATTR] if best else None,
        best_value=best.value if best else None,
        best_params=best.params if best else {},
        trials_run=max(trials - done, 0),
        finished=_finished(study),
        pruned=states.count(optuna.trial.TrialState.PRUNED),
    )


def _candidate(config: PipelineConfig, name: str) -> CandidateConfig:
    candidate = config.candidates.get(name)
    if candidate is None:
        raise UserError(f"unknown candidate {name!r}", f"use one of {sorted(config.candidates)}")
    return candidate


def _open_study(name: str, storage: str, seed: int):
    import optuna

    try:
        return optuna.create_study(
            study_name=name,
            storage=storage,
            load_if_exists=True,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            # No pruning before 3 trials have finished or before the first fold's score.
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
        )
    except Exception as error:  # Optuna/SQLAlchemy raise many types for a bad URL
        raise UserError(
            f"cannot open Optuna storage {storage}: {str(error).splitlines()[0]}",
            "pass --storage as an SQLAlchemy URL such as sqlite:///build/experiments/optuna.db",
        ) from None


def _finished(study) -> int:
    from optuna.trial import TrialState

    return sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


def _best(study):
    from optuna.trial import TrialState

    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    return max(complete, key=lambda t: t.value) if complete else None


def _objective(candidate, train, holdout, features, config, lineage, tags, folds, log_models):
    """The trial function: inner CV with pruning, then holdout evaluation, all in a child run."""
    import optuna

    space = SEARCH_SPACES[candidate.kind]

    def objective(trial: optuna.Trial) -> float:
        params = {**candidate.params, **space(trial)}
        tuned = CandidateConfig(kind=candidate.kind, params=params)
        trial_tags = {**tags, "optuna.trial": str(trial.number)}
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True, tags=trial_tags) as r:
            trial.set_user_attr(TRIAL_RUN_ATTR, r.info.run_id)
            model = build_model(tuned, lineage.seed)
            mlflow.log_params(_flat(model.named_steps["model"].get_params()))
            value = _inner_auc(trial, model, train, features, folds)
            if value is None:
                mlflow.set_tag("optuna.state", "PRUNED")
            else:
                mlflow.set_tag("optuna.state", "COMPLETE")
                _evaluate_on_holdout(model, train, holdout, features, config.decision_threshold)
                if log_models:
                    log_model(model, train[features].head(5))
                    mlflow.set_tag(MODEL_TAG, "model")
        if value is None:
            raise optuna.TrialPruned()
        return value

    return objective


def _inner_auc(trial, model, train, features, folds) -> float | None:
    """Mean validation AUC over time-ordered folds of ``train``; None once the trial is pruned."""
    scores = []
    x, y = train[features], train[LABEL].to_numpy()
    for step, (fit_rows, val_rows) in enumerate(TimeSeriesSplit(n_splits=folds).split(x)):
        model.fit(x.iloc[fit_rows], y[fit_rows])
        scores.append(roc_auc_score(y[val_rows], model.predict_proba(x.iloc[val_rows])[:, 1]))
        mlflow.log_metric("inner_auc", scores[-1], step=step)
        trial.report(float(np.mean(scores)), step)
        if trial.should_prune():
            return None
    return float(np.mean(scores))


def _evaluate_on_holdout(model, train, holdout, features, threshold: float) -> None:
    model.fit(train[features], train[LABEL].to_numpy())
    score = model.predict_proba(holdout[features])[:, 1]
    mlflow.log_metrics(classification_metrics(holdout[LABEL], score, threshold))
    log_holdout_predictions(holdout, score)


def _log_best_model(best, candidate, train, features, seed: int) -> None:
    run_id = best.user_attrs[TRIAL_RUN_ATTR]
    if mlflow.get_run(run_id).data.tags.get(MODEL_TAG):
        return  # logged by an earlier session of this study
    params = {**candidate.params, **best.params}
    model = build_model(CandidateConfig(kind=candidate.kind, params=params), seed)
    model.fit(train[features], train[LABEL].to_numpy())
    with mlflow.start_run(run_id=run_id, nested=True):
        log_model(model, train[features].head(5))
        mlflow.set_tag(MODEL_TAG, "model")


def _flat(params: dict[str, Any]) -> dict[str, str]:
    """MLflow params are strings; an estimator's params are scalars (or None) here."""
    return {key: str(value) for key, value in params.items()}
