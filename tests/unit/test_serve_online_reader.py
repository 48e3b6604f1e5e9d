"""The online reader must not share its feature-name lists with the online store."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ml.serve.features import OnlineFeatureReader, _View


class _MutatingProvider:
    """Like Feast's Redis store: appends its timestamp key to ``requested_features``."""

    def online_read(self, config, table, entity_keys, requested_features):
        requested_features.append(f"_ts:{table.name}")
        value = SimpleNamespace(WhichOneof=lambda _: "double_val", double_val=1.5)
        return [(None, {"a": value, "b": value}) for _ in entity_keys]


def test_read_survives_a_store_that_mutates_the_requested_list() -> None:
    reader = object.__new__(OnlineFeatureReader)
    reader.store = SimpleNamespace(config=None)
    reader.provider = _MutatingProvider()
    reader.names = ["a", "b"]
    reader.views = [_View(SimpleNamespace(name="v"), ["a", "b"], [0, 1])]
    reader.missing = None
    for _ in range(2):  # the second read saw a longer list before the fix
        values, found = reader.read([1, 2])
        assert found.all() and np.all(values == 1.5)
