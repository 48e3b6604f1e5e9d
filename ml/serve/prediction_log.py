"""The prediction log: one JSON line per live or shadow prediction, joined later to outcomes.

Columns (the contract with monitoring): ``request_id``, ``timestamp`` (ISO 8601, UTC),
``customer_id``, ``application_id`` (nullable), ``variant``, ``model_version``, ``features``
(name → value, null where missing), ``score``, ``prediction``, ``latency_ms``, ``shadow``
(bool), ``error`` (null, or why the variant failed and the request fell back).

Records are written by a background thread, so the request path only appends a dict to a deque
(no lock, no wake-up: notifying a writer thread per request cost ~10% of the request path's
samples in a profile, GIL hand-offs included); the writer drains it every ``flush_s``. Several
server worker processes append to the same file: each flush is one ``write`` on a file opened
with ``O_APPEND``, which Linux keeps whole for regular files, so lines never interleave.

In a pod (a reports bucket is configured) :class:`ShippingPredictionLog` is used instead: the
same buffer goes to small local segment files that are shipped as gzip JSONL objects to
``s3://<reports>/predictions/`` every N records or T seconds and deleted once shipped, so local
disk stays bounded (an emptyDir) and the drift monitor reads the batches.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.objectstore import PREDICTIONS_PREFIX

log = logging.getLogger(__name__)

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


class PredictionLog:
    """Append-only JSONL writer; a bounded buffer whose overflow is counted, never blocks."""

    def __init__(self, path: Path, max_queue: int = 100_000, flush_s: float = 0.1) -> None:
        self.path = path
        self.dropped = 0
        self.max_queue = max_queue
        self._buffer: deque = deque()
        self._flush_s = flush_s
        self._stop = threading.Event()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def write(self, record: dict[str, Any]) -> None:
        """Buffer one record; never blocks the caller."""
        if len(self._buffer) >= self.max_queue:
            self.dropped += 1
            return
        self._buffer.append(record)

    def flush(self) -> None:
        """Write everything buffered so far (one ``write`` call)."""
        lines = []
        while self._buffer:
            lines.append(json.dumps(self._buffer.popleft(), allow_nan=False))
        if lines:
            os.write(self._fd, ("\n".join(lines) + "\n").encode())

    def close(self) -> None:
        """Write everything buffered and close the file."""
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush()
        os.close(self._fd)

    def _run(self) -> None:
        while not self._stop.wait(self._flush_s):
            self.flush()


class ShippingPredictionLog:
    """Ships the log to the object store in bounded batches; local disk is a bounded spool.

    The request path only appends to a deque (as :class:`PredictionLog`). A background thread
    writes the buffer to the open segment file, closes it after ``batch_records`` records or
    ``batch_s`` seconds, uploads each closed segment as one gzip JSONL object and deletes it.
    A failed upload is retried on the next tick; when unshipped segments exceed
    ``max_spool_bytes`` the oldest are deleted and their records counted as dropped (as are
    records that arrive while the buffer is full). :meth:`close` ships everything left.

    Batch keys are ``predictions/<UTC yyyymmddTHHMMSSmmm>-<pod>-<pid>-<seq>.jsonl.gz``: the
    time is when the segment was closed (no record in it is newer), so keys sort by time and a
    newest-first reader may stop at the first key older than its window. The pid and a
    per-process sequence keep the worker processes of one pod apart.
    """

    def __init__(
        self,
        bucket: Any,
        spool_dir: Path,
        pod: str,
        batch_records: int = 5000,
        batch_s: float = 30.0,
        max_spool_bytes: int = 128 * 2**20,
        max_queue: int = 100_000,
        flush_s: float = 0.2,
        metrics: dict | None = None,
    ) -> None:
        self.bucket = bucket
        self.pod = pod
        self.batch_records = batch_records
        self.batch_s = batch_s
        self.max_spool_bytes = max_spool_bytes
        self.max_queue = max_queue
        self.dropped = 0
        self.shipped = 0
        self.counter = metrics["mlops_prediction_log_records"] if metrics else None
        self.spool = spool_dir / f"{pod}-{os.getpid()}"
        self.spool.mkdir(parents=True, exist_ok=True)
        self._buffer: deque = deque()
        self._seq = 0
        self._fd: int | None = None
        self._count = 0
        self._opened = 0.0
        self._lock = threading.Lock()  # the thread and close() both write segments
        self._flush_s = flush_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prediction-ship", daemon=True)
        self._thread.start()

    def write(self, record: dict[str, Any]) -> None:
        """Buffer one record; never blocks the caller (a full buffer drops and counts)."""
        if len(self._buffer) >= self.max_queue:
            self._drop(1)
            return
        self._buffer.append(record)

    def flush(self) -> None:
        """Write the buffer to segments of at most ``batch_records``; close full or old ones."""
        with self._lock:
            while self._buffer:
                fd = self._segment_fd()  # opens a segment (and resets the count) if none
                room = self.batch_records - self._count
                lines: list[str] = []
                while self._buffer and len(lines) < room:
                    lines.append(json.dumps(self._buffer.popleft(), allow_nan=False))
                os.write(fd, ("\n".join(lines) + "\n").encode())
                self._count += len(lines)
                if self._count >= self.batch_records:
                    self._rotate()
            if self._fd is not None and time.monotonic() - self._opened >= self.batch_s:
                self._rotate()

    def ship(self) -> None:
        """Upload closed segments oldest first, delete each once stored; then enforce the cap."""
        for segment in [*self._orphans(), *self._closed()]:
            try:
                data = segment.read_bytes()
            except FileNotFoundError:  # another process shipped the same orphan
                continue
            try:
                self.bucket.put_bytes(
                    PREDICTIONS_PREFIX + segment.name + ".gz",
                    gzip.compress(data, compresslevel=5),
                    "application/gzip",
                )
            except Exception as error:  # the store is down: keep it, retry later
                log.warning("prediction log: shipping %s failed: %s", segment.name, error)
                break
            segment.unlink(missing_ok=True)  # the key is the name: a second upload is the same
            self._shipped(data.count(b"\n"))
        self._enforce_cap()

    def close(self) -> None:
        """Flush, close the open segment and ship everything (a clean shutdown loses nothing)."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.flush()
        with self._lock:
            if self._fd is not None:
                self._rotate()
        self.ship()

    def spool_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.spool.glob("*.jsonl*"))

    def _run(self) -> None:
        while not self._stop.wait(self._flush_s):
            try:
                self.flush()
                self.ship()
            except Exception as error:  # e.g. disk full: keep serving, retry
                log.warning("prediction log: %s", error)

    def _open(self) -> None:
        self._seq += 1
        self._fd = os.open(self._open_path(), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._count, self._opened = 0, time.monotonic()

    def _open_path(self) -> Path:
        return self.spool / "open.jsonl.part"

    def _segment_fd(self) -> int:
        if self._fd is None:
            self._open()
        assert self._fd is not None
        return self._fd

    def _rotate(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
        name = f"{stamp}-{self.pod}-{os.getpid()}-{self._seq:06d}.jsonl"
        self._open_path().rename(self.spool / name)

    def _closed(self) -> list[Path]:
        return sorted(self.spool.glob("*.jsonl"))

    def _orphans(self) -> list[Path]:
        """Closed segments of this pod's processes that died (a worker restart keeps /tmp)."""
        orphans: list[Path] = []
        for folder in self.spool.parent.glob(f"{self.pod}-*"):
            pid = folder.name.rsplit("-", 1)[-1]
            if folder != self.spool and pid.isdigit() and not pid_alive(int(pid)):
                orphans += folder.glob("*.jsonl")
        return sorted(orphans)

    def _enforce_cap(self) -> None:
        segments = self._closed()
        total = sum(p.stat().st_size for p in segments)
        while segments and total > self.max_spool_bytes:
            oldest = segments.pop(0)
            log.warning("prediction log: spool over %d bytes, dropping %s", total, oldest.name)
            total -= oldest.stat().st_size
            self._drop(oldest.read_bytes().count(b"\n"))
            oldest.unlink()

    def _drop(self, n: int) -> None:
        self.dropped += n
        if self.counter is not None:
            self.counter.labels("dropped").inc(n)

    def _shipped(self, n: int) -> None:
        self.shipped += n
        if self.counter is not None:
            self.counter.labels("shipped").inc(n)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _complete_lines(text: str) -> list[str]:
    """The newline-terminated lines of ``text``: a reader can catch a writer mid-``write``, and the
    unterminated tail is then half a record that the next read will see whole."""
    return text.split("\n")[:-1]


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
    records = [json.loads(line) for line in _complete_lines(path.read_text()) if line.strip()]
    frame = pd.DataFrame.from_records(records, columns=list(COLUMNS))
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True, format="ISO8601")
    frame["shadow"] = frame["shadow"].astype(bool)
    frame["application_id"] = frame["application_id"].astype("Int64")
    return frame
