"""``mlops bench experiments``: MLflow run search at 10⁴ and 10⁵ runs on PostgreSQL.

Runs are loaded with PostgreSQL ``COPY`` straight into MLflow's own tables (created by MLflow's
``SqlAlchemyStore``, so the schema is exactly what a server uses); loading 10⁵ runs through the
tracking API would take hours. Each run looks like a training run: eight parameters, eight
metrics (with their latest values), a dozen tags including the lineage hashes and a free-text
note. Queries go through ``MlflowClient.search_runs`` on the database URI, i.e. the same SQL a
tracking server issues. Sizes are loaded incrementally into one dedicated database, measured
without and then with the index migration of :mod:`ml.experiments.indexes`, and the database
is dropped at the end.
"""

from __future__ import annotations

import io
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from ml.experiments import indexes

BENCH_DATABASE = "mlops_bench_runs"
EXPERIMENT = "bench-runs"
KINDS = ["logistic_regression", "random_forest", "hist_gradient_boosting"]
NOTES = ["scheduled retrain", "drift on income", "manual run", "feature backfill", "hotfix"]
METRICS = ["roc_auc", "pr_auc", "brier", "log_loss", "accuracy", "precision", "recall",
           "positive_rate"]  # fmt: skip

# name → (filter, order_by): the searches people run on a busy tracking server.
QUERIES: dict[str, tuple[str, list[str]]] = {
    "metric_threshold_tag_order_by_metric": (
        "metrics.roc_auc > 0.85 and tags.candidate = 'random_forest'",
        ["metrics.roc_auc DESC"],
    ),
    "param_equality": ("params.max_depth = '8'", []),
    "tag_text_search": ("tags.note ILIKE '%drift%'", []),
}


@contextmanager
def bench_database(admin_url: str) -> Iterator[str]:
    """Create the dedicated database, yield its SQLAlchemy URL, drop it afterwards."""
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE}")
        admin.execute(f"CREATE DATABASE {BENCH_DATABASE}")
    url = admin_url.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"
    try:
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")


def create_schema(url: str, artifact_root: str) -> str:
    """MLflow's schema (its own migrations) and the bench experiment; return the experiment id."""
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore(sqlalchemy_url(url), artifact_root)
    return store.create_experiment(EXPERIMENT)


def sqlalchemy_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def load_runs(url: str, experiment_id: str, count: int, start: int, seed: int) -> float:
    """COPY ``count`` realistic runs (numbered from ``start``) into MLflow's tables; seconds."""
    import psycopg

    rng = np.random.default_rng(seed + start)
    began = time.perf_counter()
    tables = _tables(rng, experiment_id, count, start)
    with psycopg.connect(url) as connection:
        for table, frame in tables.items():
            buffer = io.StringIO()
            frame.to_csv(buffer, sep="\t", header=False, index=False, na_rep="\\N")
            columns = ", ".join(f'"{c}"' for c in frame.columns)
            with connection.cursor().copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
        connection.execute("ANALYZE")
    return time.perf_counter() - began


def _tables(rng, experiment_id: str, count: int, start: int) -> dict[str, pd.DataFrame]:
    ids = np.array([uuid.UUID(int=int(i)).hex for i in rng.integers(1, 2**63, count)])
    hashes = [uuid.UUID(int=int(i)).hex * 2 for i in rng.integers(1, 2**63, 50)]
    started = 1_760_000_000_000 + (start + np.arange(count)) * 60_000
    kind = rng.choice(KINDS, count)
    runs = pd.DataFrame({
        "run_uuid": ids, "name": [f"run-{start + i}" for i in range(count)],
        "source_type": "LOCAL", "source_name": "ml/train.py", "entry_point_name": "",
        "user_id": rng.choice(["svc-pipeline", "alice", "bob"], count), "status": "FINISHED",
        "start_time": started, "end_time": started + 45_000, "source_version": "",
        "lifecycle_stage": "active", "artifact_uri": [f"/artifacts/{r}" for r in ids],
        "experiment_id": int(experiment_id),
    })  # fmt: skip
    params = {
        "kind": kind, "max_depth": rng.integers(3, 15, count).astype(str),
        "C": np.round(rng.lognormal(0, 1, count), 4).astype(str),
        "learning_rate": np.round(rng.uniform(0.01, 0.3, count), 4).astype(str),
        "min_samples_leaf": rng.integers(5, 100, count).astype(str),
        "features": "income,debt_ratio,age,loan_amount,term_months,late_payments_90d,utilisation",
        "train_rows": rng.integers(2_000, 50_000, count).astype(str), "seed": "42",
    }  # fmt: skip
    auc = np.clip(rng.normal(0.8, 0.04, count), 0.5, 0.99)
    metrics = {name: np.round(rng.uniform(0, 1, count), 6) for name in METRICS}
    metrics["roc_auc"] = auc
    tags = {
        "candidate": kind, "mlflow.runName": runs["name"].to_numpy(),
        "mlflow.user": runs["user_id"].to_numpy(), "mlflow.source.name": "ml/train.py",
        "mlflow.source.type": "LOCAL", "lineage.feature_service": "credit_v1",
        "lineage.git_commit": rng.choice(hashes, count),
        "lineage.training_set_sha256": rng.choice(hashes, count),
        "lineage.snapshot_sha256": rng.choice(hashes, count),
        "lineage.seed": "42", "note": rng.choice(NOTES, count),
    }  # fmt: skip
    metric_rows = _long(ids, metrics, "value")
    metric_rows["timestamp"] = np.tile(started + 40_000, len(metrics))
    metric_rows["step"] = 0
    metric_rows["is_nan"] = False
    return {
        "runs": runs,
        "params": _long(ids, params, "value"),
        "tags": _long(ids, tags, "value"),
        "metrics": metric_rows,
        "latest_metrics": metric_rows,
    }


def _long(ids: np.ndarray, columns: dict, value: str) -> pd.DataFrame:
    """One row per (run, key), as MLflow's key/value tables store them."""
    frames = [
        pd.DataFrame({"key": key, value: np.broadcast_to(values, len(ids)), "run_uuid": ids})
        for key, values in columns.items()
    ]
    return pd.concat(frames, ignore_index=True)


def measure(url: str, experiment_id: str, repeats: int) -> dict[str, dict]:
    """p50/p95 (ms) of each query over ``repeats`` runs after one warm-up; rows returned."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=sqlalchemy_url(url))
    results = {}
    for name, (filter_string, order_by) in QUERIES.items():
        timings, found = [], 0
        for attempt in range(repeats + 1):
            began = time.perf_counter()
            found = len(client.search_runs([experiment_id], filter_string, order_by=order_by,
                                           max_results=100))  # fmt: skip
            if attempt:  # the first one warms caches and the connection pool
                timings.append((time.perf_counter() - began) * 1000)
        quantiles = statistics.quantiles(timings, n=20, method="inclusive")
        results[name] = {
            "filter": filter_string,
            "order_by": order_by,
            "max_results": 100,
            "returned": found,
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(quantiles[18], 1),
            "max_ms": round(max(timings), 1),  # one stall on a shared machine shows up here
        }
    return results


def run_experiments_bench(
    admin_url: str, sizes: list[int], repeats: int, artifact_root: str, seed: int = 0
) -> dict:
    """Load each size in turn (incrementally), measure without and with the indexes.

    Returns:
        ``{"sizes": {n: {"load_s", "without_indexes", "with_indexes", "indexes"}}, ...}``.
    """
    import psycopg

    result: dict = {"repeats": repeats, "queries": list(QUERIES), "sizes": {}}
    with bench_database(admin_url) as url:
        experiment_id = create_schema(url, artifact_root)
        loaded = 0
        for size in sorted(sizes):
            load_s = load_runs(url, experiment_id, size - loaded, loaded, seed)
            loaded = size
            without = measure(url, experiment_id, repeats)
            with psycopg.connect(url, autocommit=True) as connection:
                began = time.perf_counter()
                created = indexes.apply(connection)
                index_s = time.perf_counter() - began
                with_ = measure(url, experiment_id, repeats)
                indexes.revert(connection)
            result["sizes"][str(size)] = {
                "load_s": round(load_s, 1),
                "index_build_s": round(index_s, 1),
                "indexes": created,
                "without_indexes": without,
                "with_indexes": with_,
            }
    return result
