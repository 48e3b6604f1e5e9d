"""The Feast feature repository and the functions that operate it.

* :mod:`ml.features.definitions` — entities, sources, feature views, the on-demand
  transformation and the versioned feature services (one set of definitions everywhere).
* :mod:`ml.features.store` — write the per-environment ``feature_store.yaml``, ingest validated
  batches, ``apply``, build point-in-time training sets, materialize, read online features.
"""
