"""Experiment management on MLflow: paired comparison of runs, tracked tuning, search at scale.

``compare`` tests whether runs evaluated on the same holdout differ (statistics in
:mod:`ml.experiments.stats`), ``tune`` runs an Optuna study as nested MLflow runs, ``search``
queries runs with MLflow's filter language, ``bench`` measures that search at 10⁵ runs, and
``reproduce`` retrains a pipeline run from its manifest and checks it gets the same results.
MLflow stays the only tracking store; Optuna's storage holds only the study's sampler state.
"""
