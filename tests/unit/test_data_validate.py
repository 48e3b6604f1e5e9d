"""Data tests: ingestion validation quarantines bad rows and flags distribution drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml.data.generate import Drift, generate, with_bad_rows
from ml.data.validate import (
    ReferenceProfile,
    build_profile,
    ks_distance,
    validate,
    write_quarantine,
)
from ml.errors import UserError


@pytest.fixture(scope="module")
def profile() -> ReferenceProfile:
    reference = generate(800, seed=1, days=180)
    return build_profile({n: validate(n, f).accepted for n, f in reference.tables().items()})


@pytest.mark.parametrize("rate", [0.0, 0.01, 0.05])
def test_counts_reconcile_and_every_bad_row_is_quarantined(rate, tmp_path):
    corrupted, injected = with_bad_rows(generate(300, seed=2, days=120), rate=rate, seed=3)
    results = [validate(name, frame) for name, frame in corrupted.tables().items()]
    counts = write_quarantine(results, tmp_path).set_index("table")
    for name, frame in corrupted.tables().items():
        row = counts.loc[name]
        assert row["accepted"] + row["quarantined"] == row["received"] == len(frame)
        assert row["quarantined"] == injected.get(name, 0)


def test_quarantined_rows_name_the_rule_they_broke(tmp_path):
    corrupted, _ = with_bad_rows(generate(300, seed=2, days=120), rate=0.05, seed=3)
    result = validate("customer_profile", corrupted.profiles)
    assert result.quarantined["reason"].str.match(r"^(income|employment_years):").all()
    write_quarantine([result], tmp_path)
    saved = pd.read_parquet(tmp_path / "customer_profile.parquet")
    assert len(saved) == len(result.quarantined) and "reason" in saved


def test_a_batch_like_the_reference_passes_the_distribution_checks(profile):
    batch = generate(400, seed=5, days=120)
    for name, frame in batch.tables().items():
        assert validate(name, frame, profile).drift == ()


@pytest.mark.parametrize(
    ("table", "drifted_column"),
    [("customer_profile", "income"), ("customer_transactions", "utilization")],
)
def test_covariate_drift_is_flagged_without_quarantining_rows(profile, table, drifted_column):
    batch = generate(400, seed=5, days=120, drift=Drift("covariate", 1.0)).tables()[table]
    result = validate(table, batch, profile)
    assert f"{drifted_column}:ks_vs_reference<=0.1" in result.drift
    assert len(result.quarantined) == 0


def test_refuse_rejects_a_drifted_batch_whole(profile):
    batch = generate(400, seed=5, days=120, drift=Drift("covariate", 1.0)).profiles
    with pytest.raises(UserError, match="drifted from its reference profile"):
        validate("customer_profile", batch, profile, on_drift="refuse")


def test_a_null_rate_above_the_reference_is_flagged(profile):
    batch = generate(400, seed=5, days=120).transactions.copy()
    batch.loc[batch.sample(frac=0.2, random_state=0).index, "utilization"] = np.nan
    result = validate("customer_transactions", batch, profile)
    assert "utilization:null_rate<=0.01" in result.drift
    assert result.received == len(batch)


def test_profile_round_trips_through_json(profile, tmp_path):
    assert ReferenceProfile.load(profile.save(tmp_path / "profile.json")) == profile


@pytest.mark.parametrize(
    ("shift", "expected"), [(0.0, (0.0, 0.03)), (0.5, (0.15, 0.25)), (5.0, (0.98, 1.0))]
)
def test_ks_distance_against_reference_quantiles(shift, expected):
    rng = np.random.default_rng(0)
    reference = build_profile({"t": pd.DataFrame({"x": rng.normal(size=20_000)})})
    sample = pd.Series(rng.normal(loc=shift, size=20_000))
    low, high = expected
    assert low <= ks_distance(sample, reference.tables["t"]["x"].quantiles) <= high


def test_ks_distance_handles_discrete_columns():
    rng = np.random.default_rng(0)
    counts = pd.DataFrame({"late": rng.poisson(0.2, 20_000)})
    reference = build_profile({"t": counts}).tables["t"]["late"]
    assert ks_distance(pd.Series(rng.poisson(0.2, 5_000)), reference.quantiles) < 0.03
    assert ks_distance(pd.Series(rng.poisson(1.0, 5_000)), reference.quantiles) > 0.3
