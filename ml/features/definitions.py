"""Feast definitions of the credit-risk features, named module-level objects.

Sources point at Parquet files *relative to the feature repository*, which Feast resolves
against ``repo_path``; the same definitions therefore serve every environment, and only
``feature_store.yaml`` (registry, online and offline store) differs between them. In the
cluster (``MLOPS_FEATURES_BUCKET`` set) the file sources are the ingested folders
``s3://<features>/offline/<table>/`` instead: every Parquet file there is one accepted batch
(see :mod:`ml.ingest`), read with the endpoint from ``AWS_ENDPOINT_URL_S3``.

TTLs say how old a value may be and still be served or joined: profiles are updated every few
weeks, so 180 days; transaction aggregates are recomputed weekly, so 14 days. A value older than
its TTL comes back as missing, which the models handle explicitly.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from datetime import timedelta

import pandas as pd
from feast import Entity, FeatureService, FeatureView, Field, FileSource, RequestSource, ValueType
from feast.data_source import DataSource
from feast.infra.offline_stores.contrib.postgres_offline_store.postgres_source import (
    PostgreSQLSource,
)
from feast.on_demand_feature_view import on_demand_feature_view
from feast.types import Float64, Int64

from contract import env, objectstore

PROFILE_TTL = timedelta(days=180)
TRANSACTIONS_TTL = timedelta(days=14)

customer = Entity(
    name="customer",
    join_keys=["customer_id"],
    value_type=ValueType.INT64,
    description="A retail banking customer.",
)

customer_profile_source = FileSource(
    name="customer_profile_source",
    path="data/customer_profile.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created_timestamp",
    description="Validated customer profile snapshots.",
)

customer_transactions_source = FileSource(
    name="customer_transactions_source",
    path="data/customer_transactions.parquet",
    timestamp_field="event_timestamp",
    created_timestamp_column="created_timestamp",
    description="Validated weekly transaction aggregates.",
)

# The same tables in the production offline store (Postgres). They keep the file sources' names
# so that a registry looks the same in every environment; only one kind is applied per store.
customer_profile_pg_source = PostgreSQLSource(
    name="customer_profile_source",
    table="feast_customer_profile",
    timestamp_field="event_timestamp",
    created_timestamp_column="created_timestamp",
    description="Validated customer profile snapshots.",
)

customer_transactions_pg_source = PostgreSQLSource(
    name="customer_transactions_source",
    table="feast_customer_transactions",
    timestamp_field="event_timestamp",
    created_timestamp_column="created_timestamp",
    description="Validated weekly transaction aggregates.",
)

customer_profile = FeatureView(
    name="customer_profile",
    entities=[customer],
    ttl=PROFILE_TTL,
    schema=[
        Field(name="income", dtype=Float64),
        Field(name="employment_years", dtype=Float64),
        Field(name="num_open_accounts", dtype=Int64),
        Field(name="credit_limit", dtype=Float64),
    ],
    source=customer_profile_source,
    online=True,
    tags={"owner": "risk-data", "pii": "false"},
)

customer_transactions = FeatureView(
    name="customer_transactions",
    entities=[customer],
    ttl=TRANSACTIONS_TTL,
    schema=[
        Field(name="txn_count_30d", dtype=Int64),
        Field(name="txn_amount_30d", dtype=Float64),
        Field(name="utilization", dtype=Float64),
        Field(name="late_payments_90d", dtype=Int64),
    ],
    source=customer_transactions_source,
    online=True,
    tags={"owner": "risk-data", "pii": "false"},
)

# What the caller supplies with each scoring request (not stored in the feature store).
application_request = RequestSource(
    name="application_request",
    schema=[Field(name="loan_amount", dtype=Float64), Field(name="term_months", dtype=Int64)],
)


@on_demand_feature_view(
    sources=[customer_profile, application_request],
    schema=[
        Field(name="loan_to_income", dtype=Float64),
        Field(name="payment_to_income", dtype=Float64),
    ],
    mode="pandas",
    description="Affordability ratios of the requested loan, computed at request time.",
)
def application_ratios(inputs: pd.DataFrame) -> pd.DataFrame:
    income = inputs["income"].where(inputs["income"] > 0)
    monthly_payment = inputs["loan_amount"] / inputs["term_months"]
    return pd.DataFrame(
        {
            "loan_to_income": inputs["loan_amount"] / income,
            "payment_to_income": 12 * monthly_payment / income,
        }
    )


# Feature services are the versioned contract between the feature store and a model.
credit_v1 = FeatureService(
    name="credit_v1",
    features=[customer_profile, customer_transactions],
    description="Profile and transaction features (v1).",
    tags={"version": "1"},
)

credit_v2 = FeatureService(
    name="credit_v2",
    features=[customer_profile, customer_transactions, application_ratios],
    description="v1 plus request-time affordability ratios (v2).",
    tags={"version": "2"},
)

ENTITIES = [customer]
SOURCES = [customer_profile_source, customer_transactions_source, application_request]
FEATURE_VIEWS = [customer_profile, customer_transactions]
ON_DEMAND_VIEWS = [application_ratios]
FEATURE_SERVICES = {service.name: service for service in (credit_v1, credit_v2)}
ALL_OBJECTS = [
    *ENTITIES,
    *SOURCES[:2],
    *FEATURE_VIEWS,
    *ON_DEMAND_VIEWS,
    *FEATURE_SERVICES.values(),
]
# Batch source per offline store type, per feature view (file is what the views declare).
POSTGRES_SOURCES = {
    customer_profile.name: customer_profile_pg_source,
    customer_transactions.name: customer_transactions_pg_source,
}


def s3_sources(bucket: str, endpoint: str | None) -> dict[str, FileSource]:
    """The file sources over the ingested folders of ``bucket``, by feature view name."""
    local = {customer_profile.name: customer_profile_source}
    local[customer_transactions.name] = customer_transactions_source
    return {
        view: FileSource(
            name=source.name,
            path=objectstore.s3_url(bucket, objectstore.offline_table_prefix(view)),
            timestamp_field="event_timestamp",
            created_timestamp_column="created_timestamp",
            s3_endpoint_override=endpoint or None,
            description=source.description,
        )
        for view, source in local.items()
    }


def objects_for(offline_store_type: str) -> list:
    """The objects to apply for a store whose offline store is ``offline_store_type``.

    Feature names, TTLs, entities and services are the same everywhere; only the feature views'
    batch source follows the offline store: Parquet files in the repo, the object store's
    offline folders when ``MLOPS_FEATURES_BUCKET`` is set, or Postgres tables.
    """
    from ml.settings import get_settings

    bucket = get_settings().bucket("features")
    sources: Mapping[str, DataSource]
    if offline_store_type == "postgres":
        sources = POSTGRES_SOURCES
    elif bucket:
        sources = s3_sources(bucket, os.environ.get(env.AWS_ENDPOINT_URL_S3))
    else:
        return ALL_OBJECTS
    views = []
    for view in FEATURE_VIEWS:
        moved = copy.copy(view)
        moved.batch_source = sources[view.name]
        views.append(moved)
    # On-demand views and services reference the views by name; the moved copies replace them.
    return [*ENTITIES, *sources.values(), *views, *ON_DEMAND_VIEWS, *FEATURE_SERVICES.values()]
