"""Pod readiness that means every worker process can answer, not just the one probed.

The server runs several worker processes on one port; the kubelet's ``/readyz`` reaches one of
them. A pod whose probed worker had its model while another was still loading (or had lost
its registry) was marked ready and answered part of its traffic with 503. So each worker keeps
a mark in a directory shared by the workers of its server (named after the process that
started them) while it can answer, refreshed by a thread rather than by probes (a worker the
probes never reach still counts), and a worker reports ready only when as many live workers
as the server runs are marked.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from ml.serve.prediction_log import pid_alive


class WorkerReadiness:
    """This worker's ready mark, and whether all ``expected`` workers of the server have one."""

    def __init__(
        self,
        expected: int,
        is_ready: Callable[[], bool],
        directory: Path | None = None,
        pid: int | None = None,
    ) -> None:
        self.expected = expected
        self._is_ready = is_ready
        self.directory = directory or Path(tempfile.gettempdir()) / f"mlops-ready-{os.getppid()}"
        self.directory.mkdir(parents=True, exist_ok=True)
        self._mark = self.directory / str(pid or os.getpid())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Mark or unmark this worker from its own state; return that state."""
        ready = self._is_ready()
        if ready:
            self._mark.touch()
        else:
            self._mark.unlink(missing_ok=True)
        return ready

    def all_ready(self) -> bool:
        """This worker and enough live peers can answer (``/readyz``)."""
        return self.refresh() and self.ready_workers() >= self.expected

    def ready_workers(self) -> int:
        """Marks of workers still alive (a restarted worker's old mark does not count)."""
        marks = (m.name for m in self.directory.iterdir())
        return sum(1 for name in marks if name.isdigit() and pid_alive(int(name)))

    def watch(self, every_s: float = 1.0) -> None:
        """Refresh the mark in the background until :meth:`close`."""

        def loop() -> None:
            while not self._stop.wait(every_s):
                self.refresh()

        self._thread = threading.Thread(target=loop, name="readiness-mark", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:  # else a refresh in flight could mark us again
            self._thread.join(timeout=5)
        self._mark.unlink(missing_ok=True)
