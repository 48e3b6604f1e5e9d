"""A reversible migration: indexes on MLflow's PostgreSQL schema for searches at scale.

MLflow's schema indexes its tables by primary key and ``run_uuid`` only, so a filter on a
metric's value, a parameter's or tag's value, a substring of a tag, or the default ordering of
an experiment's runs scans whole tables. These indexes serve exactly those searches. They are
not MLflow's own migrations (its Alembic history never sees them): ``apply`` adds them, and
``revert`` removes them (and pg_trgm, if ``apply`` created it) before an MLflow upgrade, which
may reshape the tables. Both are idempotent.
"""

from __future__ import annotations

# (index name, definition). ``CONCURRENTLY`` keeps a live server writable during the build.
INDEXES: list[tuple[str, str]] = [
    ("mlops_runs_experiment_start",
     "ON runs (experiment_id, start_time DESC, run_uuid)"),
    ("mlops_latest_metrics_key_value",
     "ON latest_metrics (key, value, run_uuid)"),
    ("mlops_params_key_value",
     "ON params (key, value, run_uuid)"),
    ("mlops_tags_key_value",
     "ON tags (key, value, run_uuid)"),
    ("mlops_tags_value_trgm",
     "ON tags USING gin (value gin_trgm_ops)"),
]  # fmt: skip
TRGM_MARKER = "mlops_created_pg_trgm"  # a comment on the extension: we created it, we drop it


def apply(connection) -> list[str]:
    """Create the indexes (and pg_trgm for substring search); return the ones created.

    Args:
        connection: a psycopg connection in autocommit mode to the MLflow database.
    """
    existing = _existing(connection)
    if not connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'").fetchone():
        connection.execute("CREATE EXTENSION pg_trgm")
        connection.execute(f"COMMENT ON EXTENSION pg_trgm IS '{TRGM_MARKER}'")
    created = []
    for name, definition in INDEXES:
        if name not in existing:
            connection.execute(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} {definition}")
            created.append(name)
    for table in ("runs", "latest_metrics", "params", "tags"):
        connection.execute(f"ANALYZE {table}")
    return created


def revert(connection) -> list[str]:
    """Drop the indexes (and pg_trgm when :func:`apply` created it); return those dropped."""
    dropped = []
    for name, _ in INDEXES:
        if name in _existing(connection):
            connection.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            dropped.append(name)
    comment = connection.execute(
        "SELECT obj_description(oid, 'pg_extension') FROM pg_extension WHERE extname = 'pg_trgm'"
    ).fetchone()
    if comment and comment[0] == TRGM_MARKER:
        connection.execute("DROP EXTENSION pg_trgm")
    return dropped


def _existing(connection) -> set[str]:
    rows = connection.execute("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")
    return {row[0] for row in rows.fetchall()}
