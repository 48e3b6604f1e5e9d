"""Validation at ingestion: declarative pandera schemas, quarantine instead of silent drops.

Each raw table is checked against its schema (types, ranges, nulls, uniqueness of the event
key). Rows that fail a row-level check go to quarantine with the failed rules as ``reason``; the
rest are accepted. ``accepted + quarantined == received`` always holds, and a batch whose
structure is wrong (a missing column, a wrong type) is refused whole with a clear error, because
no row of it can be trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from ml.errors import UserError

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
class Validated:
    """The outcome of validating one table."""

    table: str
    accepted: pd.DataFrame
    quarantined: pd.DataFrame  # the rejected rows plus a ``reason`` column

    @property
    def received(self) -> int:
        return len(self.accepted) + len(self.quarantined)


def validate(table: str, frame: pd.DataFrame) -> Validated:
    """Split ``frame`` into accepted rows and quarantined rows with their reasons.

    Raises:
        UserError: the table is unknown, or its structure (columns, types) is wrong.
    """
    schema = SCHEMAS.get(table)
    if schema is None:
        raise UserError(f"no schema for table {table!r}", f"use one of {sorted(SCHEMAS)}")
    frame = frame.reset_index(drop=True)
    try:
        return Validated(
            table, schema.validate(frame, lazy=True), frame.iloc[0:0].assign(reason="")
        )
    except SchemaErrors as errors:
        return _split(table, schema, frame, errors.failure_cases)


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
