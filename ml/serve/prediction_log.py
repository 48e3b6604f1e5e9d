"""The prediction log: one JSON line per live or shadow prediction, joined later to outcomes.

Columns (the contract with monitoring): ``request_id``, ``timestamp`` (ISO 8601, UTC),
``customer_id``, ``application_id`` (nullable), ``variant``, ``model_version``, ``features``
(name → value, null where missing), ``score``, ``prediction``, ``latency_ms``, ``shadow``
(bool), ``error`` (null, or why the variant failed and the request fell back).

Records are written by a background thread, so the request path only enqueues a dict. Several
server worker processes append to the same file: each flush is one ``write`` on a file opened
with ``O_APPEND``, which Linux keeps whole for regular files, so lines never interleave.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path
from typing import Any

COLUMNS = (
    "request_id",
    "timestamp",
    "customer_id",
    "application_id",
    "variant",
    "model_version",
    "features",
    "score",
    "prediction",
    "latency_ms",
    "shadow",
    "error",
)
_STOP = object()


class PredictionLog:
    """Append-only JSONL writer with a bounded queue (overflow is counted, never blocks)."""

    def __init__(self, path: Path, max_queue: int = 100_000, flush_s: float = 0.2) -> None:
        self.path = path
        self.dropped = 0
        self._queue: queue.Queue = queue.Queue(max_queue)
        self._flush_s = flush_s
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def write(self, record: dict[str, Any]) -> None:
        """Enqueue one record; never blocks the caller."""
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Write everything queued so far and close the file."""
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        os.close(self._fd)

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=self._flush_s)
            except queue.Empty:
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = any(item is _STOP for item in batch)
            lines = [json.dumps(r, allow_nan=False) for r in batch if r is not _STOP]
            if lines:
                os.write(self._fd, ("\n".join(lines) + "\n").encode())
            if stop:
                return


def read_prediction_log(path: Path):
    """The log as a DataFrame (``timestamp`` parsed as UTC), one row per prediction.

    Args:
        path: A JSONL file written by :class:`PredictionLog`.

    Returns:
        A pandas DataFrame with :data:`COLUMNS`.
    """
    import pandas as pd

    if not path.is_file():
        from ml.errors import UserError

        raise UserError(f"no prediction log at {path}", "serve some requests first")
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    frame["shadow"] = frame["shadow"].astype(bool)
    frame["application_id"] = frame["application_id"].astype("Int64")
    return frame
