"""Where a serving worker's latency tail comes from: an opt-in recorder for the p99 study.

With ``MLOPS_SERVING_PROFILE_DIR`` set, each worker records, for every request and batch:

* ``request``: from ``/predict`` entering the batcher to its answer (the server-side latency);
* ``wait``: how long a batch's oldest request waited before its batch started scoring (the
  batching window: the previous batch still scoring);
* ``batch``: a batch's scoring time in the worker thread, and its ``size``;
* ``feature_read``, ``model``, ``log``: the parts of that scoring;
* ``gc``: every collection's pause, by generation (``gc.callbacks``), and the objects each full
  collection had to walk (``gen2_objects``);
* ``loop_lag``: how late a 5 ms timer on the event loop fires (anything holding the loop:
  a collection, JSON encoding, the GIL held by the scoring thread).

The recorder writes ``worker-<pid>.json`` into the folder at shutdown only: an earlier version
also wrote it every 5 s, and encoding the growing series held the GIL for up to hundreds of
milliseconds, a tail of its own. :func:`summarize` turns a folder into percentiles. Recording
costs a ``perf_counter`` call and a list append per event; off, nothing is wrapped.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

LAG_TICK_S = 0.005
COUNTS = ("size", "gen2_objects")  # series that are not durations


class Profile:
    """One worker's recorded series (seconds), written as JSON into ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.series: dict[str, list[float]] = defaultdict(list)
        self._gc_started = 0.0
        folder.mkdir(parents=True, exist_ok=True)
        gc.callbacks.append(self._on_gc)

    def add(self, name: str, value: float) -> None:
        self.series[name].append(value)

    def timed(self, name: str, function: Callable) -> Callable:
        """``function``, recording each call's duration under ``name``."""

        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.series[name].append(time.perf_counter() - start)

        return wrapper

    async def watch_loop(self) -> None:
        """Record how late a short timer fires, for as long as the event loop runs."""
        while True:
            start = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            self.series["loop_lag"].append(time.perf_counter() - start - LAG_TICK_S)

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            if info["generation"] == 2:  # what a full collection has to walk
                self.series["gen2_objects"].append(len(gc.get_objects(2)))
            self._gc_started = time.perf_counter()
        else:
            self.series[f"gc{info['generation']}"].append(time.perf_counter() - self._gc_started)

    def write(self) -> None:
        data = {name: list(values) for name, values in list(self.series.items())}
        target = self.folder / f"worker-{os.getpid()}.json"
        staging = target.with_suffix(".tmp")
        staging.write_text(json.dumps(data))
        os.replace(staging, target)


def summarize(folder: Path) -> dict:
    """Per series: count, p50/p99/max in ms (sums for GC); each worker's share of requests."""
    workers = [json.loads(p.read_text()) for p in sorted(folder.glob("worker-*.json"))]
    merged: dict[str, list[float]] = defaultdict(list)
    for worker in workers:
        for name, values in worker.items():
            merged[name].extend(values)
    out: dict = {}
    for name, values in sorted(merged.items()):
        ms = np.asarray(values) * (1 if name in COUNTS else 1000)
        out[name] = {
            "count": len(ms),
            "p50": round(float(np.percentile(ms, 50)), 3),
            "p99": round(float(np.percentile(ms, 99)), 3),
            "max": round(float(ms.max()), 3),
            "total": round(float(ms.sum()), 1),
        }
    requests = [len(w.get("request", [])) for w in workers]
    out["worker_request_share"] = [round(n / max(sum(requests), 1), 3) for n in requests]
    return out
