"""Operate the Feast feature store: prepare the repo, ingest, apply, train sets, serve online.

The embedded mode keeps the registry, the offline Parquet files and the SQLite online store in
one folder (``Settings.feature_repo_dir``). Other environments use the same functions with a
different ``feature_store.yaml`` (see ``environments/``).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import warnings
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pandas as pd
from feast import FeatureService, FeatureStore

from contract import env
from ml.data.generate import REQUEST_FEATURES
from ml.errors import ServiceUnavailable, UserError
from ml.features import definitions

ENVIRONMENTS_DIR = Path(__file__).parent / "environments"
# Tables that feed feature views; they are written as Parquet into the repo's data/ folder.
SOURCE_TABLES = ("customer_profile", "customer_transactions")
_ENV_REFERENCE = re.compile(r"\$\{(\w+)\}")
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def prepare_repo(repo_dir: Path, environment: str = "embedded") -> Path:
    """Create ``repo_dir`` with the environment's ``feature_store.yaml`` and a data/ folder."""
    template = ENVIRONMENTS_DIR / f"{environment}.yaml"
    if not template.exists():
        known = sorted(p.stem for p in ENVIRONMENTS_DIR.glob("*.yaml"))
        raise UserError(f"no feature store environment {environment!r}", f"use one of {known}")
    (repo_dir / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, repo_dir / "feature_store.yaml")
    return repo_dir


def production_environment(
    postgres_url: str, redis_url: str, project: str = "credit_risk"
) -> dict[str, str]:
    """The ``MLOPS_FEAST_*`` variables that ``environments/production.yaml`` reads.

    Args:
        postgres_url: ``postgresql://user:password@host:port/db[?sslmode=...]``.
        redis_url: ``redis://[:password@]host:port[/db]`` (``rediss://`` for TLS).
        project: Feast project; namespaces registry rows and Redis keys.

    Returns:
        Variables to put into the environment of any process that opens the store.
    """
    pg, rd = urlsplit(postgres_url), urlsplit(redis_url)
    query = dict(part.split("=", 1) for part in pg.query.split("&") if "=" in part)
    sslmode = query.get("sslmode", "disable" if pg.hostname in _LOOPBACK else "require")
    redis = f"{rd.hostname}:{rd.port or 6379},db={(rd.path or '/0').strip('/') or 0}"
    if rd.password:
        redis += f",password={unquote(rd.password)}"
    if rd.scheme == "rediss":
        redis += ",ssl=true"
    return {
        "MLOPS_FEAST_PROJECT": project,
        "MLOPS_FEAST_REGISTRY_URL": pg._replace(scheme="postgresql+psycopg", query="").geturl(),
        "MLOPS_FEAST_REDIS": redis,
        "MLOPS_FEAST_PG_HOST": pg.hostname or "localhost",
        "MLOPS_FEAST_PG_PORT": str(pg.port or 5432),
        "MLOPS_FEAST_PG_DATABASE": pg.path.lstrip("/"),
        "MLOPS_FEAST_PG_USER": unquote(pg.username or ""),
        "MLOPS_FEAST_PG_PASSWORD": unquote(pg.password or ""),
        "MLOPS_FEAST_PG_SSLMODE": sslmode,
    }


def config_file(repo_dir: Path) -> Path:
    """The repo's ``feature_store.yaml``, else the one ``FEAST_FS_YAML_FILE_PATH`` names.

    Embedded, the repo folder holds its own config; in a pod the repository is in the image
    (``MLOPS_FEATURE_REPO``) and the cluster's config is a mounted Secret elsewhere.
    """
    own = repo_dir / "feature_store.yaml"
    mounted = os.environ.get(env.FEAST_YAML, "").strip()
    if own.is_file() or not mounted:
        return own
    return Path(mounted)


def missing_variables(repo_dir: Path) -> list[str]:
    """Environment variables that ``repo_dir``'s ``feature_store.yaml`` needs but are unset."""
    text = config_file(repo_dir).read_text()
    return sorted({name for name in _ENV_REFERENCE.findall(text) if not os.environ.get(name)})


def ingest(repo_dir: Path, tables: dict[str, pd.DataFrame]) -> dict[str, Path]:
    """Write the validated source tables where the feature views' sources point.

    The Parquet files are always written (they are the embedded offline store and the input of
    the snapshot archive); a Postgres offline store additionally gets them as tables.
    """
    paths: dict[str, Path] = {}
    for name in SOURCE_TABLES:
        path = repo_dir / "data" / f"{name}.parquet"
        tables[name].to_parquet(path, index=False)
        paths[name] = path
    config = _repo_config(repo_dir)
    if config.offline_store.type == "postgres":
        from ml.features.postgres import load_tables

        load_tables(config.offline_store, {n: tables[n] for n in SOURCE_TABLES})
    return paths


def _repo_config(repo_dir: Path):
    from feast.repo_config import load_repo_config

    _require_variables(repo_dir)
    return load_repo_config(repo_dir, config_file(repo_dir))


def _require_variables(repo_dir: Path) -> None:
    if not config_file(repo_dir).exists():
        raise UserError(
            f"no feature_store.yaml in {repo_dir} (nor at ${env.FEAST_YAML})",
            "run `mlops demo` (or prepare the repo, or mount the cluster's config) first",
        )
    missing = missing_variables(repo_dir)
    if missing:
        raise UserError(
            f"feature store config needs unset environment variables {missing}",
            "export them (see ml/features/environments/production.yaml)",
        )


def open_store(repo_dir: Path) -> FeatureStore:
    """Open the feature store whose ``feature_store.yaml`` is in ``repo_dir``.

    Raises:
        UserError: no config, or the config refers to unset environment variables.
        ServiceUnavailable: the registry (e.g. Postgres) cannot be reached.
    """
    _require_variables(repo_dir)
    from ml.settings import get_settings

    if get_settings().bucket("features"):
        from ml.features import s3

        s3.register()  # the offline store is s3://<features>/offline/ (see definitions)
    try:
        store = FeatureStore(repo_path=str(repo_dir), fs_yaml_file=config_file(repo_dir))
        store.registry  # noqa: B018 - Feast connects lazily; fail here, not mid-request
        return store
    except Exception as error:  # SQLAlchemy/psycopg errors when the SQL registry is down
        if "OperationalError" not in type(error).__name__:
            raise
        raise ServiceUnavailable(
            f"feature registry unreachable: {str(error).splitlines()[0]}",
            "start the registry database or fix MLOPS_FEAST_REGISTRY_URL",
        ) from None


def apply(store: FeatureStore) -> None:
    """Register every definition (idempotent, like ``feast apply``)."""
    store.apply(definitions.objects_for(store.config.offline_store.type))


def feature_service(store: FeatureStore, name: str) -> FeatureService:
    """The registered feature service ``name``; a one-line error names the known ones."""
    try:
        return store.get_feature_service(name)
    except Exception:  # Feast raises its own FeatureServiceNotFoundException subclasses
        known = sorted(definitions.FEATURE_SERVICES)
        raise UserError(f"unknown feature service {name!r}", f"use one of {known}") from None


def model_features(service_name: str) -> list[str]:
    """The model's input columns: the service's features plus the request fields."""
    service = definitions.FEATURE_SERVICES.get(service_name)
    if service is None:
        known = sorted(definitions.FEATURE_SERVICES)
        raise UserError(f"unknown feature service {service_name!r}", f"use one of {known}")
    names = [
        f.name for projection in service.feature_view_projections for f in projection.features
    ]
    return [*names, *REQUEST_FEATURES]


def training_set(store: FeatureStore, entity_df: pd.DataFrame, service_name: str) -> pd.DataFrame:
    """Point-in-time correct features for each row of ``entity_df``: exactly one row per row.

    ``entity_df`` needs ``customer_id``, ``event_timestamp`` and the request fields; any other
    columns (ids, labels) are carried through. Rows come back sorted by ``application_id`` when
    present, so that the result (and its hash) does not depend on Feast's internal order.

    Feast's file offline store silently drops entity rows in two cases: when a view has rows for
    the entity but none within its TTL, the whole entity row disappears (not just that view's
    values); and rows sharing ``(customer_id, event_timestamp)`` collapse into one (Feast issue
    6787). So each view is joined on its own (a row it drops has no valid value *for that
    view*, which is NaN), duplicate keys are joined in separate rounds, and the parts are
    reassembled by row position.
    """
    service = feature_service(store, service_name)
    entity = entity_df.reset_index(drop=True)
    with warnings.catch_warnings():
        # Feast's file offline store turns the entity timestamps' min and max into datetimes
        # to bound its read, and pandas warns that their nanoseconds go: Feast's business, not
        # the user's (it printed into every training and rebuild's progress output).
        warnings.filterwarnings("ignore", "Discarding nonzero nanoseconds", UserWarning)
        parts = [_join_view(store, entity, refs) for refs in _refs_by_view(service)]
    frame = pd.concat([entity, *parts], axis=1)
    key = "application_id" if "application_id" in frame else "event_timestamp"
    return frame.sort_values(key, kind="stable").reset_index(drop=True)


_ROW = "__row"


def _refs_by_view(service: FeatureService) -> list[list[str]]:
    return [
        [f"{p.name_to_use()}:{f.name}" for f in p.features]
        for p in service.feature_view_projections
    ]


def _join_view(store: FeatureStore, entity: pd.DataFrame, refs: list[str]) -> pd.DataFrame:
    columns = [ref.split(":", 1)[1] for ref in refs]
    rounds = entity.groupby(["customer_id", "event_timestamp"], sort=False).cumcount()
    joined = []
    for level in sorted(rounds.unique()):
        chunk = entity[rounds == level].assign(**{_ROW: lambda f: f.index.to_numpy()})
        result = store.get_historical_features(entity_df=chunk, features=refs).to_df()
        joined.append(result.set_index(_ROW)[columns])
    return pd.concat(joined).reindex(entity.index) if joined else pd.DataFrame(columns=columns)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def _plain_feast_output() -> Iterator[None]:
    """Feast prints its materialization progress with terminal colour codes; pass the text on
    without them (they end up as raw escape codes in the demo's progress and in pod logs)."""
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            yield
    finally:
        lines = (_ANSI.sub("", line).rstrip() for line in buffer.getvalue().splitlines())
        text = "\n".join(line for line in lines if line)
        if text:
            print(text)


def materialize(store: FeatureStore, start: datetime, end: datetime) -> None:
    """Load feature values with event times in [start, end] into the online store."""
    with _plain_feast_output():
        store.materialize(start_date=start, end_date=end)


def materialize_incremental(store: FeatureStore, end: datetime) -> dict[str, datetime]:
    """Load every view's new values up to ``end``; return how far each view is now loaded.

    Feast starts each view where its previous run ended (the first run starts one TTL back),
    so running this on a schedule loads each batch once.
    """
    with _plain_feast_output():
        store.materialize_incremental(end_date=end)
    views = store.list_feature_views()
    return {
        view.name: view.most_recent_end_time
        for view in (store.get_feature_view(v.name) for v in views)
        if view.most_recent_end_time is not None
    }


def online_features(store: FeatureStore, rows: Sequence[dict], service_name: str) -> pd.DataFrame:
    """Online feature vectors for ``rows`` (each with ``customer_id`` and request fields)."""
    service = feature_service(store, service_name)
    return store.get_online_features(features=service, entity_rows=list(rows)).to_df()
