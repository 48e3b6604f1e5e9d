"""Online feature retrieval for the serving path: explicit statuses, bounded time, degradation.

:func:`fetch_features` never raises for unknown entities: their values are missing and their
status per feature says why (Feast's ``FieldStatus``: PRESENT, NULL_VALUE, NOT_FOUND,
OUTSIDE_MAX_AGE). When the online store or registry is down or slow, it either raises
:class:`ServiceUnavailable` quickly (``on_missing="reject"``) or returns default values with the
status ``UNAVAILABLE`` (``on_missing="default"``); it never waits longer than ``timeout_s``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Literal

import pandas as pd
from feast import FeatureStore

from ml.errors import ServiceUnavailable
from ml.features import store as feature_store

OnMissing = Literal["reject", "default"]
UNAVAILABLE = "UNAVAILABLE"  # ours: the store could not answer, the value is a default
MISSING_STATUSES = ("NULL_VALUE", "NOT_FOUND", "OUTSIDE_MAX_AGE", UNAVAILABLE)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


@dataclass(frozen=True)
class FetchedFeatures:
    """Feature vectors for the request rows, with a status per value."""

    values: pd.DataFrame  # one row per request row: entity key + feature columns
    statuses: pd.DataFrame  # same shape; Feast FieldStatus names, or UNAVAILABLE
    degraded: bool = False  # True when defaults replaced an unavailable store
    error: str | None = None  # why the store was unavailable

    def missing(self) -> pd.DataFrame:
        """Boolean frame: which values were not served from the store."""
        return self.statuses.isin(MISSING_STATUSES)


def fetch_features(
    store: FeatureStore,
    rows: Sequence[dict],
    service: str,
    on_missing: OnMissing = "reject",
    timeout_s: float = 0.5,
    defaults: Mapping[str, float] | None = None,
) -> FetchedFeatures:
    """Online features of ``service`` for ``rows`` (``customer_id`` + request fields each).

    Args:
        store: an open feature store.
        rows: entity rows, as for ``FeatureStore.get_online_features``.
        service: feature service name (``credit_v1``, ``credit_v2``).
        on_missing: ``"reject"``: an unavailable store raises; missing values stay NaN.
            ``"default"``: an unavailable store and missing values both yield ``defaults``.
        timeout_s: the longest this call waits for the store.
        defaults: feature → value used by ``"default"`` (features not in it stay NaN).

    Raises:
        ServiceUnavailable: the store failed or timed out and ``on_missing="reject"``.
    """
    try:
        values, statuses = _online(store, list(rows), service, timeout_s)
    except ServiceUnavailable as error:
        if on_missing == "reject":
            raise
        return _all_defaults(rows, service, defaults or {}, error.what)
    if on_missing == "default" and defaults:
        values = _fill(values, statuses, defaults)
    return FetchedFeatures(values, statuses)


def median_defaults(frame: pd.DataFrame, features: Sequence[str]) -> dict[str, float]:
    """Per-feature medians of ``frame`` (e.g. the training set): a neutral default vector."""
    return {f: float(frame[f].median()) for f in features if f in frame}


def _online(
    store: FeatureStore, rows: list[dict], service: str, timeout_s: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    future = _executor().submit(_read, store, rows, service)
    try:
        return future.result(timeout=timeout_s)
    except FutureTimeout:
        future.cancel()
        raise ServiceUnavailable(
            f"online feature store did not answer within {timeout_s:g}s",
            "check the online store (Redis) and the registry, or raise timeout_s",
        ) from None
    except ServiceUnavailable:
        raise
    except Exception as error:  # connection refused, auth, registry errors: all are outages here
        if _is_user_error(error):
            raise
        first = (str(error).splitlines() or [""])[0][:200]
        raise ServiceUnavailable(
            f"online feature store failed: {type(error).__name__}: {first}",
            "check that the online store (Redis) and the registry are up and reachable",
        ) from None


def _read(store: FeatureStore, rows: list[dict], service: str):
    from feast.protos.feast.serving.ServingService_pb2 import FieldStatus

    response = store.get_online_features(
        features=feature_store.feature_service(store, service), entity_rows=rows
    )
    values = response.to_df()
    names = list(response.proto.metadata.feature_names.val)
    statuses = pd.DataFrame(
        {
            name: [FieldStatus.Name(s) for s in result.statuses]
            for name, result in zip(names, response.proto.results, strict=True)
        }
    )[list(values.columns)]
    # On-demand features computed from missing inputs come back PRESENT but null; say so.
    statuses = statuses.mask(values.isna() & (statuses == "PRESENT"), "NULL_VALUE")
    return values, statuses


def _is_user_error(error: Exception) -> bool:
    from ml.errors import UserError

    return isinstance(error, UserError)


def _fill(
    values: pd.DataFrame, statuses: pd.DataFrame, defaults: Mapping[str, float]
) -> pd.DataFrame:
    missing = statuses.isin(MISSING_STATUSES)
    filled = values.copy()
    for column, value in defaults.items():
        if column in filled:
            filled[column] = filled[column].where(~missing[column], value)
    return filled


def _all_defaults(
    rows: Sequence[dict], service: str, defaults: Mapping[str, float], error: str
) -> FetchedFeatures:
    features = [f for f in feature_store.model_features(service) if f not in _request_fields()]
    keys = pd.DataFrame({"customer_id": [row.get("customer_id") for row in rows]})
    values = keys.assign(**{f: float(defaults.get(f, float("nan"))) for f in features})
    statuses = pd.DataFrame(UNAVAILABLE, index=values.index, columns=values.columns)
    statuses["customer_id"] = "PRESENT"
    return FetchedFeatures(values, statuses, degraded=True, error=error)


def _request_fields() -> set[str]:
    from ml.data.generate import REQUEST_FEATURES

    return set(REQUEST_FEATURES)


def _executor() -> ThreadPoolExecutor:
    # Created on first use (nothing at import time); shared so each call costs no thread start.
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="feature-fetch")
        return _pool
