"""The production feature store on real services: Postgres registry + offline store, Redis online.

Services come from ``scripts/services.sh start`` (``build/services/env``) or the environment
(``MLOPS_TEST_POSTGRES_URL``, ``MLOPS_TEST_REDIS_URL``). Each run uses its own Feast project,
so it does not touch other runs' registry rows or Redis keys.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ml.data.generate import PROFILE_FEATURES, TRANSACTION_FEATURES, generate
from ml.data.validate import validate
from ml.errors import ServiceUnavailable
from ml.features import store as feature_store
from ml.features.serving import fetch_features
from ml.pipeline import labelled_entities
from ml.settings import apply_process_defaults
from tests.conftest import require_service

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
FEATURES = [*PROFILE_FEATURES, *TRANSACTION_FEATURES]


def service_urls() -> tuple[str, str]:
    """(Postgres URL, Redis URL) from the environment or build/services/env, else skip/fail."""
    urls = {k: os.environ.get(k) for k in ("MLOPS_TEST_POSTGRES_URL", "MLOPS_TEST_REDIS_URL")}
    env_file = ROOT / "build" / "services" / "env"
    if not all(urls.values()) and env_file.exists():
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key in urls and not urls[key]:
                urls[key] = value.strip().strip("'\"")
    for name, key in (
        ("PostgreSQL", "MLOPS_TEST_POSTGRES_URL"),
        ("Redis", "MLOPS_TEST_REDIS_URL"),
    ):
        if not urls[key]:
            require_service(name, f"{key} is not set and build/services/env has no value")
    return urls["MLOPS_TEST_POSTGRES_URL"], urls["MLOPS_TEST_REDIS_URL"]


def _reachable(url: str) -> bool:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return False
    return True


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def backends():
    postgres, redis = service_urls()
    for name, url in (("PostgreSQL", postgres), ("Redis", redis)):
        if not _reachable(url):
            require_service(name, f"nothing listens at {url.rsplit('@', 1)[-1]}")
    return postgres, redis


@pytest.fixture(scope="module")
def dataset():
    data = generate(200, seed=21, days=120)
    return data, {n: validate(n, f).accepted for n, f in data.tables().items()}


@pytest.fixture(scope="module")
def production(backends, dataset, tmp_path_factory):
    """A production-environment store with data ingested, applied and materialized."""
    apply_process_defaults()
    data, tables = dataset
    env = feature_store.production_environment(*backends, project=f"it_{uuid.uuid4().hex[:8]}")
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    repo = feature_store.prepare_repo(tmp_path_factory.mktemp("prod_repo"), "production")
    feature_store.ingest(repo, tables)
    store = feature_store.open_store(repo)
    feature_store.apply(store)
    feature_store.materialize(
        store, data.start - pd.Timedelta(days=365), data.end + pd.Timedelta(days=1)
    )
    yield repo, store
    try:
        store.teardown()
    finally:
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)


@pytest.fixture(scope="module")
def embedded(dataset, tmp_path_factory):
    data, tables = dataset
    repo = feature_store.prepare_repo(tmp_path_factory.mktemp("emb_repo"))
    feature_store.ingest(repo, tables)
    store = feature_store.open_store(repo)
    feature_store.apply(store)
    feature_store.materialize(
        store, data.start - pd.Timedelta(days=365), data.end + pd.Timedelta(days=1)
    )
    return store


def test_the_yaml_holds_no_secret(production, backends):
    repo, _ = production
    text = (repo / "feature_store.yaml").read_text()
    password = os.environ["MLOPS_FEAST_PG_PASSWORD"]
    assert password and password not in text
    assert "${MLOPS_FEAST_REGISTRY_URL}" in text


def test_registry_lives_in_postgres(production):
    repo, _ = production
    fresh = feature_store.open_store(repo)  # a second client sees what the first applied
    assert {s.name for s in fresh.list_feature_services()} == {"credit_v1", "credit_v2"}
    assert type(fresh.registry).__name__ == "SqlRegistry"


def test_postgres_offline_store_joins_like_the_embedded_one(production, embedded, dataset):
    _, store = production
    entities = labelled_entities(dataset[1]["applications"])
    remote = feature_store.training_set(store, entities, "credit_v2")
    local = feature_store.training_set(embedded, entities, "credit_v2")
    assert len(remote) == len(local) == len(entities)
    for column in [*FEATURES, "loan_to_income", "payment_to_income"]:
        np.testing.assert_allclose(
            remote[column].astype(float), local[column].astype(float), err_msg=column
        )


def test_redis_serves_what_sqlite_serves_and_unknowns_get_statuses(production, embedded):
    _, store = production
    rows = [{"customer_id": c, "loan_amount": 5000.0, "term_months": 24} for c in (1001, 1050, 99)]
    redis = fetch_features(store, rows, "credit_v2")
    sqlite = fetch_features(embedded, rows, "credit_v2")
    pd.testing.assert_frame_equal(redis.values, sqlite.values, check_dtype=False)
    # SQLite reports NOT_FOUND, Redis NULL_VALUE: both are explicit, neither raises.
    assert redis.statuses.loc[2, FEATURES].isin(["NOT_FOUND", "NULL_VALUE"]).all()
    assert redis.missing().loc[2, FEATURES].all()
    assert redis.values.loc[2, FEATURES].isna().all()
    assert (redis.statuses.loc[:1, FEATURES] == "PRESENT").all().all()


def test_the_request_path_reader_knows_unknowns_on_redis_as_on_sqlite(production, embedded):
    """Redis answers an unknown entity with empty values, not with nothing (seen in the e2e:
    unknown customers were scored from NaNs and answered 200 instead of 404)."""
    from ml.serve.features import OnlineFeatureReader

    _, store = production
    ids = [1001, 1050, 99]
    redis_values, redis_found = OnlineFeatureReader(store, "credit_v1").read(ids)
    sqlite_values, sqlite_found = OnlineFeatureReader(embedded, "credit_v1").read(ids)
    assert list(redis_found) == list(sqlite_found) == [True, True, False]
    np.testing.assert_allclose(redis_values, sqlite_values)


@pytest.fixture()
def redis_down(production):
    repo, _ = production
    saved = os.environ["MLOPS_FEAST_REDIS"]
    os.environ["MLOPS_FEAST_REDIS"] = f"127.0.0.1:{_free_port()},db=0"
    try:
        yield feature_store.open_store(repo)
    finally:
        os.environ["MLOPS_FEAST_REDIS"] = saved


def test_redis_down_rejects_quickly(redis_down):
    started = time.perf_counter()
    with pytest.raises(ServiceUnavailable, match="online feature store"):
        fetch_features(redis_down, [{"customer_id": 1001}], "credit_v1", timeout_s=2.0)
    assert time.perf_counter() - started < 3


def test_redis_down_degrades_to_defaults(redis_down):
    fetched = fetch_features(
        redis_down,
        [{"customer_id": 1001}, {"customer_id": 1002}],
        "credit_v1",
        on_missing="default",
        timeout_s=2.0,
        defaults={"income": 40_000.0},
    )
    assert fetched.degraded and "online feature store" in fetched.error
    assert (fetched.values["income"] == 40_000.0).all()
    assert (fetched.statuses["income"] == "UNAVAILABLE").all()


def test_registry_down_is_a_clear_quick_error(production, monkeypatch):
    repo, _ = production
    url = os.environ["MLOPS_FEAST_REGISTRY_URL"]
    host_port = url.rsplit("@", 1)[1].split("/", 1)[0]
    monkeypatch.setenv(
        "MLOPS_FEAST_REGISTRY_URL", url.replace(host_port, f"127.0.0.1:{_free_port()}")
    )
    started = time.perf_counter()
    with pytest.raises(ServiceUnavailable, match="feature registry unreachable"):
        feature_store.open_store(repo)
    assert time.perf_counter() - started < 10
