"""The project's own dataset: synthetic credit risk, generated, validated and hashed.

* :mod:`ml.data.generate` — the seeded generative process (documented there) and drift scenarios.
* :mod:`ml.data.validate` — declarative ingestion checks; bad rows are quarantined with a reason.
* :mod:`ml.data.snapshot` — content hashes that identify a dataset snapshot.
"""

from ml.data.generate import (
    DRIFT_SCENARIOS,
    FEATURE_COLUMNS,
    PROFILE_FEATURES,
    PROTECTED_ATTRIBUTES,
    REQUEST_FEATURES,
    TRANSACTION_FEATURES,
    CreditDataset,
    Drift,
    generate,
    point_in_time_frame,
    sample_window,
    with_bad_rows,
)

__all__ = [
    "DRIFT_SCENARIOS",
    "FEATURE_COLUMNS",
    "PROFILE_FEATURES",
    "PROTECTED_ATTRIBUTES",
    "REQUEST_FEATURES",
    "TRANSACTION_FEATURES",
    "CreditDataset",
    "Drift",
    "generate",
    "point_in_time_frame",
    "sample_window",
    "with_bad_rows",
]
