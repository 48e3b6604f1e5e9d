"""The Feast repository of the ML image (``/app/feature_repo``, ``FEATURE_REPO_DIR``).

``feast --chdir /app/feature_repo --feature-store-yaml <mounted file> apply|serve`` imports every
Python file here and registers the Feast objects it finds among the module's attributes. This
file only points at :mod:`ml.features.definitions`, so the definitions live in one place: it
exposes the objects for the offline store that the mounted ``feature_store.yaml`` names (file
sources: the object store's offline folders when ``MLOPS_FEATURES_BUCKET`` is set, else
Parquet files; or the Postgres tables), as ``ml.features`` does when it applies them itself.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from contract import env
from ml.features.definitions import objects_for


def _offline_store_type() -> str:
    path = Path(os.environ.get(env.FEAST_YAML, "feature_store.yaml"))
    if not path.exists():
        return "file"
    config = yaml.safe_load(path.read_text()) or {}
    return str((config.get("offline_store") or {}).get("type", "file"))


# Feast reads module attributes (underscored ones too); one attribute per object.
for _index, _obj in enumerate(objects_for(_offline_store_type())):
    globals()[f"_feast_object_{_index}"] = _obj
