"""Content hashes that name a dataset snapshot.

A snapshot hash depends only on the table names, column names, dtypes and cell values — not on
the file format, the row order or the library writing Parquet — so the same data always has
the same hash and any change to a value changes it.
"""

from __future__ import annotations

import hashlib

import pandas as pd


def frame_sha256(frame: pd.DataFrame) -> str:
    """SHA-256 of one frame's schema and values, independent of row order."""
    digest = hashlib.sha256()
    digest.update(repr([(c, str(t)) for c, t in frame.dtypes.items()]).encode())
    row_hashes = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    row_hashes.sort()
    digest.update(row_hashes.tobytes())
    return digest.hexdigest()


def snapshot_sha256(tables: dict[str, pd.DataFrame]) -> str:
    """One hash for a set of named tables (the dataset snapshot)."""
    digest = hashlib.sha256()
    for name in sorted(tables):
        digest.update(f"{name}={frame_sha256(tables[name])};".encode())
    return digest.hexdigest()
