"""Experiment management on MLflow: paired comparison of runs, tracked tuning, search at scale.

``compare`` tests whether runs evaluated on the same holdout differ (statistics in
:mod:`ml.experiments.stats`), ``tune`` runs an Optuna study as nested MLflow runs, ``search``
queries runs with MLflow's filter language, and ``bench`` measures that search at 10⁵ runs.
MLflow stays the only tracking store; Optuna's storage holds only the study's sampler state.
"""
