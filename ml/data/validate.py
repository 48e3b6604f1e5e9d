"""Validation at ingestion: declarative pandera schemas, quarantine instead of silent drops.

Each raw table is checked against its schema (types, ranges, nulls, uniqueness of the event
key). Rows that fail a row-level check go to quarantine with the failed rules as ``reason``; the
rest are accepted. ``accepted + quarantined == received`` always holds, and a batch whose
structure is wrong (a missing column, a wrong type) is refused whole with a clear error, because
no row of it can be trusted.

Distribution checks compare a batch with a stored :class:`ReferenceProfile` (quantiles and null
rates per numeric column, taken from a batch known to be good). They are dataframe-level pandera
checks: a two-sample Kolmogorov–Smirnov distance against the reference quantiles, and a null-rate
ceiling. No single row fails them, so they never quarantine rows; they flag the batch
(``Validated.drift``) and, with ``on_drift="refuse"``, reject it whole.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ml.errors import UserError

# Reference quantile levels: 1 %, 2 %, …, 99 %; enough to bound the KS distance to ~0.01.
QUANTILE_LEVELS = tuple(round(p, 2) for p in np.linspace(0.01, 0.99, 99))
# Keys are not a data-quality signal; the label's null rate depends on how recent the batch is
# (labels arrive 30-90 days late) and its distribution is the monitors' business.
_NOT_PROFILED = {"customer_id", "application_id", "defaulted"}
# Kolmogorov's c(alpha) at alpha = 0.001: below this distance a batch of n rows is consistent
# with the reference by chance alone, so small batches are not flagged for sampling noise.
_KS_C_ALPHA = 1.95

_UTC = pd.DatetimeTZDtype("ns", "UTC")


def _timestamp() -> pa.Column:
    return pa.Column(_UTC, nullable=False)


def _customer_id() -> pa.Column:
    return pa.Column("int64", pa.Check.ge(1), nullable=False)


SCHEMAS: dict[str, pa.DataFrameSchema] = {
    "customers": pa.DataFrameSchema(
        {
            "customer_id": pa.Column("int64", pa.Check.ge(1), unique=True),
            "sex": pa.Column(str, pa.Check.isin(["F", "M"])),
            "age_band": pa.Column(str, pa.Check.isin(["18-25", "26-35", "36-50", "51-65", "65+"])),
            "signup_timestamp": _timestamp(),
        },
        strict="filter",
    ),
    "customer_profile": pa.DataFrameSchema(
        {
            "customer_id": _customer_id(),
            "event_timestamp": _timestamp(),
            "created_timestamp": _timestamp(),
            "income": pa.Column(float, pa.Check.in_range(1_000, 5_000_000)),
            "employment_years": pa.Column(float, pa.Check.in_range(0, 70)),
            "num_open_accounts": pa.Column("int64", pa.Check.in_range(0, 100)),
            "credit_limit": pa.Column(float, pa.Check.in_range(0, 5_000_000)),
        },
        strict=True,
    ),
    "customer_transactions": pa.DataFrameSchema(
        {
            "customer_id": _customer_id(),
            "event_timestamp": _timestamp(),
            "created_timestamp": _timestamp(),
            "txn_count_30d": pa.Column("int64", pa.Check.in_range(0, 10_000)),
            "txn_amount_30d": pa.Column(float, pa.Check.in_range(0, 10_000_000)),
            "utilization": pa.Column(float, pa.Check.in_range(0, 2)),
            "late_payments_90d": pa.Column("int64", pa.Check.in_range(0, 90)),
        },
        strict=True,
    ),
    "applications": pa.DataFrameSchema(
        {
            "application_id": pa.Column("int64", pa.Check.ge(1), unique=True),
            "customer_id": _customer_id(),
            "event_timestamp": _timestamp(),
            "loan_amount": pa.Column(float, pa.Check.in_range(100, 10_000_000)),
            "term_months": pa.Column("int64", pa.Check.isin([12, 24, 36, 48, 60])),
            "defaulted": pa.Column("Int64", pa.Check.isin([0, 1]), nullable=True),
            "label_timestamp": _timestamp(),
        },
        strict=True,
    ),
}


@dataclass(frozen=True)
class ColumnProfile:
    """A numeric column's reference distribution."""

    quantiles: tuple[float, ...]  # at QUANTILE_LEVELS, over non-null values
    null_rate: float  # share of nulls in the received (not yet validated) batch


@dataclass(frozen=True)
class ReferenceProfile:
    """Per table and column, the distribution a good batch has, and how far one may move."""

    tables: dict[str, dict[str, ColumnProfile]]
    max_ks: float = 0.1  # largest tolerated KS distance to the reference
    null_rate_slack: float = 0.01  # tolerated null rate above the reference's

    def save(self, path: Path) -> Path:
        """Write the profile as JSON (it is small and diff-able)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=1, sort_keys=True))
        return path

    @classmethod
    def load(cls, path: Path) -> ReferenceProfile:
        """Read a profile written by :meth:`save`."""
        raw = json.loads(path.read_text())
        tables = {
            table: {
                c: ColumnProfile(tuple(p["quantiles"]), p["null_rate"]) for c, p in cols.items()
            }
            for table, cols in raw.pop("tables").items()
        }
        return cls(tables, **raw)


def build_profile(
    tables: dict[str, pd.DataFrame], max_ks: float = 0.1, null_rate_slack: float = 0.01
) -> ReferenceProfile:
    """Profile every numeric, non-key column of ``tables`` (a batch known to be good)."""
    profiled = {}
    for table, frame in tables.items():
        columns = [
            c
            for c in frame.columns
            if c not in _NOT_PROFILED and pd.api.types.is_numeric_dtype(frame[c])
        ]
        profiled[table] = {c: _column_profile(frame[c]) for c in columns}
    return ReferenceProfile(profiled, max_ks, null_rate_slack)


def _column_profile(series: pd.Series) -> ColumnProfile:
    values = series.dropna().astype("float64")
    quantiles = np.quantile(values, QUANTILE_LEVELS) if len(values) else np.full(99, np.nan)
    return ColumnProfile(tuple(float(q) for q in quantiles), float(series.isna().mean()))


def ks_distance(series: pd.Series, quantiles: tuple[float, ...]) -> float:
    """KS distance between ``series`` and the reference known by its quantiles.

    Both CDFs are evaluated at the reference quantiles, where the reference CDF is known to
    within one quantile step. Tied quantiles (discrete columns such as counts) take the highest
    level that shares their value, which is the reference CDF at that value.
    """
    values = np.sort(series.dropna().to_numpy(dtype="float64"))
    if len(values) == 0:
        return 1.0
    points = np.asarray(quantiles)
    reference_cdf = np.asarray(QUANTILE_LEVELS)[np.searchsorted(points, points, "right") - 1]
    cdf = np.searchsorted(values, points, side="right") / len(values)
    return float(np.max(np.abs(cdf - reference_cdf)))


def _ks_check(reference: ColumnProfile, max_ks: float) -> pa.Check:
    def within(series: pd.Series) -> bool:
        allowance = max(max_ks, _KS_C_ALPHA / math.sqrt(max(series.notna().sum(), 1)))
        return ks_distance(series, reference.quantiles) <= allowance

    return pa.Check(within, name="ks_vs_reference", error=f"ks_vs_reference<={max_ks}")


def _null_rate_check(reference: ColumnProfile, slack: float) -> pa.Check:
    ceiling = round(reference.null_rate + slack, 6)
    return pa.Check(
        lambda series: bool(series.isna().mean() <= ceiling),
        name="null_rate",
        error=f"null_rate<={ceiling}",
        ignore_na=False,  # pandera drops nulls before checks by default; here they are the point
    )


def distribution_schemas(
    table: str, profile: ReferenceProfile
) -> tuple[pa.DataFrameSchema, pa.DataFrameSchema]:
    """Pandera schemas for ``table``: (on received rows: null rates, on accepted rows: KS)."""
    columns = profile.tables.get(table, {})
    null_rates = pa.DataFrameSchema(
        {
            c: pa.Column(nullable=True, checks=_null_rate_check(p, profile.null_rate_slack))
            for c, p in columns.items()
        },
        name=f"{table}_null_rates",
    )
    shapes = pa.DataFrameSchema(
        {
            c: pa.Column(nullable=True, checks=_ks_check(p, profile.max_ks))
            for c, p in columns.items()
        },
        name=f"{table}_distribution",
    )
    return null_rates, shapes


@dataclass(frozen=True)
class Validated:
    """The outcome of validating one table."""

    table: str
    accepted: pd.DataFrame
    quarantined: pd.DataFrame  # the rejected rows plus a ``reason`` column
    drift: tuple[str, ...] = field(default=())  # failed distribution rules, "column:rule"

    @property
    def received(self) -> int:
        return len(self.accepted) + len(self.quarantined)


def validate(
    table: str,
    frame: pd.DataFrame,
    profile: ReferenceProfile | None = None,
    on_drift: Literal["warn", "refuse"] = "warn",
) -> Validated:
    """Split ``frame`` into accepted rows and quarantined rows with their reasons.

    Args:
        table: which schema applies (a key of :data:`SCHEMAS`).
        frame: the received batch.
        profile: when given, also check the batch's distribution against it.
        on_drift: ``"warn"`` records failed distribution rules in ``Validated.drift``;
            ``"refuse"`` rejects the whole batch instead.

    Raises:
        UserError: the table is unknown, its structure (columns, types) is wrong, or its
            distribution moved and ``on_drift="refuse"``.
    """
    schema = SCHEMAS.get(table)
    if schema is None:
        raise UserError(f"no schema for table {table!r}", f"use one of {sorted(SCHEMAS)}")
    frame = frame.reset_index(drop=True)
    try:
        result = Validated(
            table, schema.validate(frame, lazy=True), frame.iloc[0:0].assign(reason="")
        )
    except SchemaErrors as errors:
        result = _split(table, schema, frame, errors.failure_cases)
    if profile is None or table not in profile.tables:
        return result
    drift = _distribution_failures(table, frame, result.accepted, profile)
    if drift and on_drift == "refuse":
        raise UserError(
            f"table {table!r} drifted from its reference profile: {', '.join(drift)}",
            "inspect the batch; if the change is real, rebuild the reference profile",
        )
    return Validated(table, result.accepted, result.quarantined, drift)


def _distribution_failures(
    table: str, received: pd.DataFrame, accepted: pd.DataFrame, profile: ReferenceProfile
) -> tuple[str, ...]:
    failed: set[str] = set()
    for schema, frame in zip(
        distribution_schemas(table, profile), (received, accepted), strict=True
    ):
        try:
            schema.validate(frame, lazy=True)
        except SchemaErrors as errors:
            cases = errors.failure_cases
            failed |= set(cases["column"].astype(str) + ":" + cases["check"].astype(str))
    return tuple(sorted(failed))


def _split(
    table: str, schema: pa.DataFrameSchema, frame: pd.DataFrame, failures: pd.DataFrame
) -> Validated:
    structural = failures[failures["index"].isna()]
    if not structural.empty:
        first = structural.iloc[0]
        raise UserError(
            f"table {table!r} has the wrong structure: {first['column']} failed "
            f"{first['check']} ({first['failure_case']})",
            "fix the producer of this batch; no row of it was ingested",
        )
    rules = failures["column"].astype(str) + ":" + failures["check"].astype(str)
    reasons = rules.groupby(failures["index"].astype("int64")).agg(
        lambda r: "; ".join(sorted(set(r)))
    )
    bad = frame.index.isin(reasons.index)
    quarantined = frame[bad].assign(reason=reasons.reindex(frame.index[bad]).to_numpy())
    accepted = schema.validate(frame[~bad], lazy=True)
    return Validated(table, accepted.reset_index(drop=True), quarantined.reset_index(drop=True))


def write_quarantine(results: list[Validated], folder: Path) -> pd.DataFrame:
    """Write every quarantined row (all tables) to ``folder`` and return the counts per table."""
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        if len(result.quarantined):
            result.quarantined.to_parquet(folder / f"{result.table}.parquet", index=False)
    return pd.DataFrame(
        [
            {
                "table": r.table,
                "received": r.received,
                "accepted": len(r.accepted),
                "quarantined": len(r.quarantined),
            }
            for r in results
        ]
    )
