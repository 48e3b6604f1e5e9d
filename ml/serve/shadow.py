"""Shadow variants: score a copy of live requests off the request path, log, never return.

The request thread only does a ``put_nowait`` on a bounded queue; a daemon thread scores the
copies. If shadows fall behind (slow model) the queue fills and further copies are dropped and
counted; if a shadow raises, the error is counted and logged. Neither can delay or change the
live answer. (The worker thread shares the GIL with requests: a shadow that *computes* for long
stretches still costs CPU, which is why shadows can be sampled.)
"""

from __future__ import annotations

import queue
import threading
import time

import numpy as np

from ml.serve.models import LoadedModel
from ml.serve.prediction_log import PredictionLog
from ml.serve.traffic import TrafficPolicy, in_sample


class ShadowRunner:
    """Bounded queue + one daemon thread scoring every configured shadow."""

    def __init__(
        self,
        models: dict[str, LoadedModel],
        policy: TrafficPolicy,
        threshold: float,
        feature_names: list[str],
        log: PredictionLog | None = None,
        metrics: dict | None = None,
    ) -> None:
        self.models = models
        self.threshold = threshold
        self.feature_names = feature_names
        self.log = log
        self.metrics = metrics
        self.dropped = 0
        self.errors = 0
        self.done = 0
        self._policy = policy
        self._queue: queue.Queue = queue.Queue(policy.shadow_queue_size)
        self._thread = threading.Thread(target=self._run, name="shadows", daemon=True)
        self._thread.start()

    def policy_changed(self, policy: TrafficPolicy) -> None:
        """Follow a new policy; shadows whose model is not loaded are skipped.

        The queue keeps the size it was created with (``shadow_queue_size`` at start-up).
        """
        self._policy = policy

    def submit(self, policy: TrafficPolicy, rows: np.ndarray, answers: list[dict], now: str):
        """Queue a copy of the live rows for the shadows; drop (and count) when full."""
        if not policy.shadows:
            return
        try:
            self._queue.put_nowait((policy, rows.copy(), answers, now))
        except queue.Full:
            self.dropped += 1
            self._count("all", "dropped")

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until the queue is drained (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.unfinished_tasks == 0:
                return True
            time.sleep(0.01)
        return False

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                self._score(*item)
            except Exception:  # never let one bad copy stop the shadows
                self.errors += 1
            finally:
                self._queue.task_done()

    def _score(self, policy: TrafficPolicy, rows, answers, now) -> None:

        for spec in policy.shadows:
            model = self.models.get(spec.name)
            picked = [
                i
                for i, a in enumerate(answers)
                if in_sample(policy.salt, a["customer_id"], spec.sample)
            ]
            if model is None or not picked:
                continue
            start = time.perf_counter()
            scores: list | np.ndarray
            try:
                scores, error = model.score(rows[picked]), None
            except Exception as exc:  # a broken shadow is a finding, not an outage
                scores, error = [None] * len(picked), f"{type(exc).__name__}: {exc}"
                self.errors += 1
            latency = (time.perf_counter() - start) * 1000 / len(picked)
            self.done += 1
            self._count(spec.name, "ok" if error is None else "error", len(picked))
            for j, i in enumerate(picked):
                self._log(spec.name, model, answers[i], rows[i], scores[j], latency, now, error)

    def _log(self, name, model, answer, row, score, latency, now, error) -> None:
        if self.log is None:
            return
        from ml.serve.predictor import features_dict

        self.log.write(
            {
                "request_id": answer["request_id"],
                "timestamp": now,
                "customer_id": answer["customer_id"],
                "application_id": answer["application_id"],
                "variant": name,
                "model_version": model.version,
                "features": features_dict(self.feature_names, row),
                "score": None if score is None else float(score),
                "prediction": None if score is None else int(score >= self.threshold),
                "latency_ms": round(latency, 3),
                "shadow": True,
                "error": error,
            }
        )

    def _count(self, variant: str, outcome: str, n: int = 1) -> None:
        if self.metrics:
            self.metrics["mlops_shadow_predictions"].labels(variant, outcome).inc(n)
