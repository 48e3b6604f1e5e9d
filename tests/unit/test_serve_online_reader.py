"""The online reader: no shared feature-name lists, one retry of a dropped connection."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from ml.serve.features import OnlineFeatureReader, _dropped_connection_errors, _View


class _MutatingProvider:
    """Like Feast's Redis store: appends its timestamp key to ``requested_features``."""

    def online_read(self, config, table, entity_keys, requested_features):
        requested_features.append(f"_ts:{table.name}")
        value = SimpleNamespace(WhichOneof=lambda _: "double_val", double_val=1.5)
        return [(None, {"a": value, "b": value}) for _ in entity_keys]


def _reader(provider, retry_budget_s: float = 1.0) -> OnlineFeatureReader:
    reader = object.__new__(OnlineFeatureReader)
    reader.store = SimpleNamespace(config=None)
    reader.provider = provider
    reader.names = ["a", "b"]
    reader.views = [_View(SimpleNamespace(name="v"), ["a", "b"], [0, 1])]
    reader.missing = None
    reader.retry_budget_s = retry_budget_s
    reader.retryable = _dropped_connection_errors()
    return reader


def test_read_survives_a_store_that_mutates_the_requested_list() -> None:
    reader = _reader(_MutatingProvider())
    for _ in range(2):  # the second read saw a longer list before the fix
        values, found = reader.read([1, 2])
        assert found.all() and np.all(values == 1.5)


class _DroppingProvider(_MutatingProvider):
    """Fails its first ``drops`` reads as a reset connection does, after ``delay_s``."""

    def __init__(self, drops: int, delay_s: float = 0.0) -> None:
        self.drops, self.delay_s, self.calls = drops, delay_s, 0

    def online_read(self, **kwargs):
        self.calls += 1
        if self.calls <= self.drops:
            __import__("time").sleep(self.delay_s)
            raise RedisConnectionError("Connection reset by peer")
        return super().online_read(**kwargs)


def test_a_dropped_connection_is_read_again_once() -> None:
    provider = _DroppingProvider(drops=1)
    _, found = _reader(provider).read([1])
    assert found.all() and provider.calls == 2


def test_a_second_drop_is_not_retried() -> None:
    provider = _DroppingProvider(drops=2)
    with pytest.raises(RedisConnectionError):
        _reader(provider).read([1])
    assert provider.calls == 2


def test_no_retry_once_the_budget_is_spent() -> None:
    provider = _DroppingProvider(drops=1, delay_s=0.3)
    with pytest.raises(RedisConnectionError):
        _reader(provider, retry_budget_s=0.2).read([1])
    assert provider.calls == 1
