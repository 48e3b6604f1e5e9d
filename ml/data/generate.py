"""Seeded synthetic credit-risk data whose structure makes point-in-time joins matter.

The generative process, for ``n`` customers over ``days`` days starting at ``start`` (UTC):

1. **Customers.** Each has an id (``customer_id``, from 1001), two protected attributes —
   ``sex`` (F/M, 50/50) and ``age_band`` (18-25 … 65+) — and a latent *financial health*
   ``h ~ N(0, 1)`` that is never published. Income depends on ``h``, the age band and, as in
   real data, slightly on sex (a proxy path that the fairness checks are meant to surface).
2. **Profile events** (``customer_profile``): a first snapshot up to 60 days before ``start``,
   then updates at exponential gaps (mean 45 days). Each carries ``income`` (a zero-drift random
   walk in log space), ``employment_years``, ``num_open_accounts`` and ``credit_limit``.
3. **Transaction snapshots** (``customer_transactions``): weekly, per customer, with a random
   phase: ``txn_count_30d``, ``txn_amount_30d``, ``utilization`` (an AR(1) process around a
   level set by ``h``) and ``late_payments_90d`` (Poisson, rising with utilization and low ``h``).
4. **Applications** (``applications``): 1 + Poisson(0.6) per customer at uniform times, each with
   a requested ``loan_amount`` and ``term_months``. The label ``defaulted`` is Bernoulli with a
   logistic link on the features *as of the application time* (the latest profile and
   transaction event at or before it). The label becomes known at ``label_timestamp``, 30–90 days
   later; labels not yet known at the end of the history are missing.
5. **Leakage trap.** After a customer defaults, their later transaction snapshots show more late
   payments. A join that takes feature values from after the application time therefore looks
   better offline than it can ever be live — the point-in-time tests rely on this.

Drift scenarios (:class:`Drift`), each with a ``size`` (0 = none):

* ``covariate`` — P(x) moves: utilization rises by ``size`` standard deviations and log income
  falls by ``size`` standard deviations; the link from features to default is unchanged.
* ``prior`` — P(y) moves, P(x|y) does not: non-defaulted applications are kept with probability
  ``1 / (1 + size)``, so the odds of default grow by the factor ``1 + size``.
* ``concept`` — P(y|x) moves, P(x) does not: the weights of utilization and late payments shrink
  by the factor ``1 - size`` and the weight of the loan-to-income ratio grows by ``1 + 2 size``,
  so only labelled data can reveal it.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``: the same arguments
give the same frames, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

DriftScenario = Literal["none", "covariate", "prior", "concept"]
DRIFT_SCENARIOS: tuple[DriftScenario, ...] = ("covariate", "prior", "concept")

PROFILE_FEATURES = ("income", "employment_years", "num_open_accounts", "credit_limit")
TRANSACTION_FEATURES = ("txn_count_30d", "txn_amount_30d", "utilization", "late_payments_90d")
REQUEST_FEATURES = ("loan_amount", "term_months")
FEATURE_COLUMNS = (*PROFILE_FEATURES, *TRANSACTION_FEATURES, *REQUEST_FEATURES)
PROTECTED_ATTRIBUTES = ("sex", "age_band")
LABEL = "defaulted"

DEFAULT_START = pd.Timestamp("2025-01-01", tz="UTC")
AGE_BANDS = ("18-25", "26-35", "36-50", "51-65", "65+")
_AGE_BAND_P = (0.15, 0.27, 0.30, 0.20, 0.08)
_AGE_INCOME_EFFECT = np.array([-0.35, -0.05, 0.12, 0.15, -0.10])
_AGE_MID_YEARS = np.array([21.5, 30.5, 43.0, 58.0, 70.0])

_LOG_INCOME_MEAN, _LOG_INCOME_SD = 10.75, 0.42
_UTILIZATION_SD = 0.18


@dataclass(frozen=True)
class Drift:
    """A named drift scenario and its size (0 means no drift)."""

    scenario: DriftScenario = "none"
    size: float = 0.0

    def __post_init__(self) -> None:
        if self.scenario not in ("none", *DRIFT_SCENARIOS):
            raise ValueError(f"unknown drift scenario {self.scenario!r}")
        if self.size < 0:
            raise ValueError("drift size must be >= 0")

    def of(self, scenario: DriftScenario) -> float:
        """The size of ``scenario`` in this drift (0 when it is another scenario)."""
        return self.size if self.scenario == scenario else 0.0


@dataclass(frozen=True)
class CreditDataset:
    """The raw event tables, as a source system would deliver them."""

    customers: pd.DataFrame
    profiles: pd.DataFrame
    transactions: pd.DataFrame
    applications: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    drift: Drift = field(default_factory=Drift)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "customers": self.customers,
            "customer_profile": self.profiles,
            "customer_transactions": self.transactions,
            "applications": self.applications,
        }


def generate(
    n_customers: int = 4000,
    seed: int = 42,
    days: int = 270,
    start: pd.Timestamp = DEFAULT_START,
    drift: Drift | None = None,
    first_customer_id: int = 1001,
    first_application_id: int = 1,
) -> CreditDataset:
    """Generate the event tables; see the module docstring for the process."""
    drift = drift or Drift()
    rng = np.random.default_rng(seed)
    end = start + pd.Timedelta(days=days)
    customers, health = _customers(rng, n_customers, start, first_customer_id)
    profiles = _profiles(rng, customers, health, start, end, drift)
    transactions = _transactions(rng, customers, health, start, end, drift)
    applications = _applications(rng, customers, start, end, first_application_id)
    applications = _label(rng, applications, profiles, transactions, end, drift)
    transactions = _leak_defaults_forward(transactions, applications)
    return CreditDataset(customers, profiles, transactions, applications, start, end, drift)


def point_in_time_frame(dataset: CreditDataset, labelled_only: bool = True) -> pd.DataFrame:
    """Applications joined with the features as of each application time (reference join).

    This is the pandas ``merge_asof`` form of the join Feast performs; the tests check that
    Feast's historical retrieval returns the same values.
    """
    frame = _as_of(dataset.applications, dataset.profiles, dataset.transactions)
    frame = frame.merge(
        dataset.customers[["customer_id", *PROTECTED_ATTRIBUTES]], on="customer_id"
    )
    if labelled_only:
        frame = frame[frame[LABEL].notna()].copy()
        frame[LABEL] = frame[LABEL].astype("int64")
    return frame.sort_values("application_id").reset_index(drop=True)


def sample_window(
    n_rows: int, seed: int, drift: Drift | None = None, days: int = 90
) -> pd.DataFrame:
    """A scoring window of ``n_rows`` labelled applications with as-of features.

    Fresh customers with a short history are generated under ``drift`` and joined point in
    time; used by the monitoring evaluation to draw many independent windows.
    """
    n_customers = max(50, int(n_rows * 1.2))
    for _ in range(6):
        dataset = generate(n_customers, seed=seed, days=days, drift=drift)
        frame = point_in_time_frame(dataset)
        frame = frame[frame["event_timestamp"] >= dataset.start + pd.Timedelta(days=7)]
        if len(frame) >= n_rows:
            return frame.sample(n=n_rows, random_state=seed).reset_index(drop=True)
        n_customers *= 2
    raise RuntimeError(f"could not draw {n_rows} labelled rows; use a smaller window")


def _customers(
    rng: np.random.Generator, n: int, start: pd.Timestamp, first_id: int
) -> tuple[pd.DataFrame, np.ndarray]:
    age_index = rng.choice(len(AGE_BANDS), size=n, p=_AGE_BAND_P)
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(first_id, first_id + n, dtype="int64"),
            "sex": rng.choice(np.array(["F", "M"]), size=n),
            "age_band": np.array(AGE_BANDS)[age_index],
            "signup_timestamp": start - pd.to_timedelta(rng.uniform(60, 2000, n), unit="D"),
        }
    )
    customers["_age_index"] = age_index
    return customers, rng.normal(size=n)


def _profiles(rng, customers, health, start, end, drift: Drift) -> pd.DataFrame:
    n = len(customers)
    # Irregular update times: first snapshot before the window, then exponential gaps.
    gaps = rng.exponential(45.0, size=(n, 12))
    offsets = -rng.uniform(1, 60, size=(n, 1)) + np.cumsum(np.c_[np.zeros(n), gaps[:, :-1]], 1)
    times = start + pd.to_timedelta(offsets.ravel(), unit="D")
    keep = times < end
    rows = np.repeat(np.arange(n), offsets.shape[1])[keep]
    steps = offsets.shape[1]

    age = customers["_age_index"].to_numpy()
    female = (customers["sex"] == "F").to_numpy()
    base = _LOG_INCOME_MEAN + _AGE_INCOME_EFFECT[age] + 0.28 * health - 0.07 * female
    base = base + rng.normal(0, 0.25, n) - drift.of("covariate") * _LOG_INCOME_SD
    walk = np.cumsum(rng.normal(0, 0.03, size=(n, steps)), axis=1)  # zero drift: stationary
    log_income = (base[:, None] + walk).ravel()[keep]

    years_at_start = np.clip(_AGE_MID_YEARS[age] - 20 + rng.normal(0, 4, n), 0, None)
    employment = (years_at_start[:, None] + offsets / 365.25).ravel()[keep]
    accounts = rng.poisson(np.clip(3 + 0.8 * health, 0.5, None)[:, None], size=(n, steps))
    limit_factor = np.exp(0.25 * health + rng.normal(0, 0.15, n))
    income = np.exp(log_income)
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy()[rows],
            "event_timestamp": times[keep],
            "income": np.round(income, 2),
            "employment_years": np.round(np.clip(employment, 0, None), 2),
            "num_open_accounts": accounts.ravel()[keep].astype("int64"),
            "credit_limit": np.round(0.3 * income * limit_factor[rows], 2),
        }
    ).pipe(_with_created)


def _transactions(rng, customers, health, start, end, drift: Drift) -> pd.DataFrame:
    n = len(customers)
    weeks = int((end - start).days // 7) + 2
    phase = rng.uniform(0, 7, n)
    offsets = phase[:, None] - 7 + 7 * np.arange(weeks)[None, :]
    # AR(1) utilization around a level set by latent health; covariate drift lifts the level.
    level = 1 / (1 + np.exp(0.9 + 0.9 * health)) + drift.of("covariate") * _UTILIZATION_SD
    noise = rng.normal(0, 0.06, size=(n, weeks))
    util = np.empty((n, weeks))
    util[:, 0] = level + noise[:, 0]
    for week in range(1, weeks):
        util[:, week] = level + 0.7 * (util[:, week - 1] - level) + noise[:, week]
    util = np.clip(util, 0.0, 1.5)
    count = rng.poisson(np.clip(22 + 6 * health, 2, None)[:, None], size=(n, weeks))
    amount = count * rng.lognormal(3.6, 0.4, size=(n, weeks))
    late_rate = np.clip(
        0.15 + 1.2 * np.clip(util - 0.5, 0, None) - 0.2 * health[:, None], 0.02, None
    )
    late = rng.poisson(late_rate)
    times = start + pd.to_timedelta(offsets.ravel(), unit="D")
    keep = times < end
    rows = np.repeat(np.arange(n), weeks)[keep]
    return pd.DataFrame(
        {
            "customer_id": customers["customer_id"].to_numpy()[rows],
            "event_timestamp": times[keep],
            "txn_count_30d": count.ravel()[keep].astype("int64"),
            "txn_amount_30d": np.round(amount.ravel()[keep], 2),
            "utilization": np.round(util.ravel()[keep], 4),
            "late_payments_90d": late.ravel()[keep].astype("int64"),
        }
    ).pipe(_with_created)


def _applications(rng, customers, start, end, first_id: int) -> pd.DataFrame:
    per_customer = 1 + rng.poisson(0.6, len(customers))
    ids = np.repeat(customers["customer_id"].to_numpy(), per_customer)
    days = (end - start).days
    offsets = rng.uniform(3, days - 0.01, len(ids))
    apps = pd.DataFrame(
        {
            "customer_id": ids,
            "event_timestamp": start + pd.to_timedelta(offsets, unit="D"),
            "loan_amount": np.round(rng.lognormal(9.0, 0.6, len(ids)), -1),
            "term_months": rng.choice(np.array([12, 24, 36, 48, 60]), len(ids)).astype("int64"),
        }
    ).sort_values(["event_timestamp", "customer_id"], kind="stable")
    apps.insert(0, "application_id", np.arange(first_id, first_id + len(apps), dtype="int64"))
    return apps.reset_index(drop=True)


def _label(rng, apps, profiles, transactions, end, drift: Drift) -> pd.DataFrame:
    frame = _as_of(apps, profiles, transactions)
    concept = drift.of("concept")
    logit = (
        -1.6
        + (1 - concept) * 5.0 * (frame["utilization"] - 0.35)
        + (1 - concept) * 0.8 * frame["late_payments_90d"]
        - 1.2 * (np.log(frame["income"]) - _LOG_INCOME_MEAN)
        + (1 + 2 * concept) * 2.0 * (frame["loan_amount"] / frame["income"] - 0.2)
        - 0.03 * frame["employment_years"]
    )
    defaulted = (rng.uniform(size=len(frame)) < 1 / (1 + np.exp(-logit))).astype("int64")
    keep = np.ones(len(frame), dtype=bool)
    if drift.of("prior") > 0:  # thin the negatives: P(x|y) stays, P(y) grows
        keep = (defaulted == 1) | (rng.uniform(size=len(frame)) < 1 / (1 + drift.of("prior")))
    delay = pd.to_timedelta(rng.uniform(30, 90, len(frame)), unit="D")
    labelled = apps.assign(
        defaulted=pd.array(defaulted, dtype="Int64"),
        label_timestamp=apps["event_timestamp"] + pd.Series(delay, index=apps.index),
    )
    labelled.loc[labelled["label_timestamp"] > end, "defaulted"] = pd.NA
    return labelled[keep].reset_index(drop=True)


def _leak_defaults_forward(transactions: pd.DataFrame, apps: pd.DataFrame) -> pd.DataFrame:
    """Raise late payments after a default, so that a leaky join is visibly too good."""
    defaults = apps.loc[apps["defaulted"] == 1, ["customer_id", "event_timestamp"]]
    first_default = defaults.groupby("customer_id")["event_timestamp"].min()
    after = transactions["event_timestamp"] > transactions["customer_id"].map(first_default)
    transactions = transactions.copy()
    transactions.loc[after.fillna(False), "late_payments_90d"] += 3
    return transactions


def _as_of(apps: pd.DataFrame, profiles: pd.DataFrame, transactions: pd.DataFrame) -> pd.DataFrame:
    """Latest profile and transaction values at or before each application (no look-ahead)."""
    frame = apps.sort_values("event_timestamp", kind="stable")
    for table, columns in ((profiles, PROFILE_FEATURES), (transactions, TRANSACTION_FEATURES)):
        right = table[["customer_id", "event_timestamp", *columns]].sort_values("event_timestamp")
        frame = pd.merge_asof(
            frame, right, on="event_timestamp", by="customer_id", direction="backward"
        )
    return frame


def _with_created(frame: pd.DataFrame) -> pd.DataFrame:
    """Add Feast's ``created_timestamp`` (ingestion time: one minute after the event)."""
    frame = frame.sort_values(["customer_id", "event_timestamp"], kind="stable")
    frame["created_timestamp"] = frame["event_timestamp"] + pd.Timedelta(minutes=1)
    return frame.reset_index(drop=True)


# Faults a real feed shows, per table: (column, bad value). Used by :func:`with_bad_rows`.
_FAULTS: dict[str, tuple[tuple[str, float], ...]] = {
    "customer_profile": (("income", -1.0), ("income", np.nan), ("employment_years", 250.0)),
    "customer_transactions": (
        ("utilization", np.nan),
        ("utilization", 7.5),
        ("txn_amount_30d", -5.0),
    ),
}


def with_bad_rows(
    dataset: CreditDataset, rate: float = 0.003, seed: int = 0
) -> tuple[CreditDataset, dict[str, int]]:
    """A copy of ``dataset`` with a fraction ``rate`` of event rows corrupted, and the counts.

    Each corrupted row gets exactly one fault from :data:`_FAULTS` (a negative income, a
    missing utilization, …), so validation must quarantine exactly that many rows per table.
    """
    rng = np.random.default_rng(seed)
    tables = dataset.tables()
    counts: dict[str, int] = {}
    for table, faults in _FAULTS.items():
        frame = tables[table].copy()
        rows = rng.choice(len(frame), size=round(rate * len(frame)), replace=False)
        kinds = rng.integers(len(faults), size=len(rows))
        for row, kind in zip(rows, kinds, strict=True):
            column, value = faults[kind]
            frame.loc[frame.index[row], column] = value
        tables[table] = frame
        counts[table] = len(rows)
    corrupted = CreditDataset(
        tables["customers"],
        tables["customer_profile"],
        tables["customer_transactions"],
        tables["applications"],
        dataset.start,
        dataset.end,
        dataset.drift,
    )
    return corrupted, counts
