"""Online features for the request path, read through Feast's online store API.

``FeatureStore.get_online_features`` builds protobuf responses and runs on-demand machinery on
every call; for a single entity that is several times the cost of the lookup itself (profiled:
see docs/serving.md). :class:`OnlineFeatureReader` resolves the feature service's views once and
then calls the provider's ``online_read`` per view, which reads the same online store (Feast
stays the source of truth; nothing is copied). A parity test checks it against the SDK.

A read that fails on a dropped connection (Redis closed an idle one, a failover reset it, SQLite
was locked) is tried once more, within a time budget (:func:`ml.features.client.retry_once`):
reads are idempotent. The request path bounds the whole read and runs it off the event loop
(:class:`ml.serve.service.LoopBatcher`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class _View:
    view: Any  # feast.FeatureView
    names: list[str]
    columns: list[int]  # positions of ``names`` in the output vector


class OnlineFeatureReader:
    """Reads a feature service's online values for customer ids into a float array."""

    def __init__(
        self,
        store: Any,
        service_name: str,
        metrics: dict | None = None,
        retry_budget_s: float = 1.0,
    ) -> None:
        from ml.features.store import feature_service

        service = feature_service(store, service_name)
        self.store = store
        self.retry_budget_s = retry_budget_s
        self.retryable = _dropped_connection_errors()
        self.provider = store._get_provider()  # the public SDK has no lower-level read
        self.names: list[str] = []
        self.views: list[_View] = []
        # mlops_online_features_missing{feature_view}: lookups a view had no value for.
        self.missing = metrics["mlops_online_features_missing"] if metrics else None
        for projection in service.feature_view_projections:
            names = [f.name for f in projection.features]
            first = len(self.names)
            self.names += names
            view = store.get_feature_view(projection.name)
            self.views.append(_View(view, names, list(range(first, first + len(names)))))

    def read(self, customer_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Feature values (NaN where missing) and, per id, whether any view knows the entity.

        A dropped connection is retried once if ``retry_budget_s`` has time left.
        """
        from ml.features.client import retry_once

        def attempt(_timeout_s: float):  # each attempt is bounded by the store's own timeout
            return self._read(customer_ids)

        return retry_once(attempt, self.retry_budget_s, self.retryable)

    def _read(self, customer_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        keys = [
            EntityKey(join_keys=["customer_id"], entity_values=[Value(int64_val=int(c))])
            for c in customer_ids
        ]
        values = np.full((len(keys), len(self.names)), np.nan)
        found = np.zeros(len(keys), dtype=bool)
        for part in self.views:
            rows = self.provider.online_read(
                config=self.store.config,
                table=part.view,
                entity_keys=keys,
                # a copy: Feast's Redis store appends its timestamp key to the list it is given
                requested_features=list(part.names),
            )
            misses = 0
            for i, (_, data) in enumerate(rows):
                # SQLite answers an unknown entity with no data; Redis with every feature
                # present but empty. Either way the view does not know it.
                present = False
                for name, column in zip(part.names, part.columns, strict=True):
                    proto = (data or {}).get(name)
                    kind = proto.WhichOneof("val") if proto is not None else None
                    if kind is not None:
                        values[i, column] = getattr(proto, kind)
                        present = True
                found[i] |= present
                misses += not present
            if misses and self.missing is not None:
                self.missing.labels(part.view.name).inc(misses)
        return values, found


def _dropped_connection_errors() -> tuple[type[Exception], ...]:
    """Errors that mean the read did not happen and may be sent again."""
    import sqlite3

    errors: list[type[Exception]] = [ConnectionError, sqlite3.OperationalError]
    try:
        from redis.exceptions import ConnectionError as RedisConnectionError
    except ImportError:  # an install without the Redis online store
        return tuple(errors)
    # Not TimeoutError: a store too slow to answer is not asked twice.
    return (*errors, RedisConnectionError)
