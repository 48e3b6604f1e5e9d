"""The request path: assign a variant, read online features, score a numpy row, log.

Per request this does one salted hash, one online-store read per feature view, one
``predict_proba`` on a (1, n) float array (no pandas DataFrame: it cost more than the model,
see docs/serving.md), and enqueues the log record and any shadow copies to background threads.
The policy file is polled once a second and swapped in whole, so a rollout decision takes
effect without a restart.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ml.serve.models import LoadedModel
from ml.serve.prediction_log import PredictionLog
from ml.serve.schemas import ScoreRequest
from ml.serve.shadow import ShadowRunner
from ml.serve.traffic import Router, TrafficPolicy


class UnknownCustomer(LookupError):
    """The feature store knows none of the customer's features."""

    def __init__(self, positions: list[int], customer_ids: list[int]) -> None:
        self.positions = positions
        self.customer_ids = customer_ids
        super().__init__(f"customer_id {customer_ids[0]} not found in the feature store")


@dataclass(frozen=True)
class _State:
    policy: TrafficPolicy
    router: Router
    models: dict[str, LoadedModel]  # live variants
    fallback: str  # variant that answers when another one fails


class Predictor:
    """Scores requests under a traffic policy. Thread-safe for concurrent requests."""

    def __init__(
        self,
        policy: TrafficPolicy,
        models: dict[str, LoadedModel],
        reader: Any,
        threshold: float,
        log: PredictionLog | None = None,
        shadows: ShadowRunner | None = None,
        metrics: dict | None = None,
    ) -> None:
        self.reader = reader
        self.threshold = threshold
        self.log = log
        self.shadows = shadows
        self.metrics = metrics
        self.request_fields = ("loan_amount", "term_months")
        self.n_store = len(reader.names)
        self.feature_names = [*reader.names, *self.request_fields]
        self._state = _make_state(policy, models)
        self._loader: Any = None
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._export_model_info()

    # -- request path -------------------------------------------------------------------------

    def predict(self, request: ScoreRequest) -> dict:
        """Score one request; raises :class:`UnknownCustomer` for an unknown entity."""
        return self.predict_many([request])[0]

    def predict_many(self, requests: Sequence[ScoreRequest]) -> list[dict]:
        """Score requests, all or none: raises :class:`UnknownCustomer` naming the unknown."""
        values, found = self.reader.read([r.customer_id for r in requests])
        if not found.all():
            missing = [i for i, ok in enumerate(found) if not ok]
            raise UnknownCustomer(missing, [requests[i].customer_id for i in missing])
        return self._score(requests, values)

    def predict_each(self, requests: Sequence[ScoreRequest]) -> list[dict | UnknownCustomer]:
        """Score independent requests together; unknown customers get an error each."""
        values, found = self.reader.read([r.customer_id for r in requests])
        known = [i for i, ok in enumerate(found) if ok]
        answers = iter(self._score([requests[i] for i in known], values[known]) if known else [])
        return [
            next(answers) if ok else UnknownCustomer([0], [r.customer_id])
            for r, ok in zip(requests, found, strict=True)
        ]

    def _score(self, requests: Sequence[ScoreRequest], values: np.ndarray) -> list[dict]:
        start = time.perf_counter()
        state = self._state
        ids = [r.customer_id for r in requests]
        rows = np.empty((len(requests), len(self.feature_names)))
        rows[:, : self.n_store] = values
        for i, r in enumerate(requests):
            rows[i, self.n_store] = r.loan_amount
            rows[i, self.n_store + 1] = r.term_months
        variants = [state.router.assign(c) for c in ids]
        answers = self._score_by_variant(state, rows, variants, requests)
        elapsed_ms = (time.perf_counter() - start) * 1000 / len(requests)
        now = datetime.now(UTC).isoformat()
        out = []
        for i, r in enumerate(requests):
            variant, version, score = answers[i]
            rid = uuid.uuid4().hex
            answer = {
                "request_id": rid,
                "customer_id": r.customer_id,
                "application_id": r.application_id,
                "variant": variant,
                "model_version": version,
                "score": score,
                "prediction": int(score >= self.threshold),
            }
            out.append(answer)
            self._record(answer, rows[i], now, elapsed_ms)
        if self.shadows is not None:
            self.shadows.submit(state.policy, rows, out, now)
        return out

    def _score_by_variant(self, state: _State, rows, variants, requests) -> list[tuple]:
        answers: list[tuple] = [None] * len(variants)  # type: ignore[list-item]
        for variant in dict.fromkeys(variants):
            idx = [i for i, v in enumerate(variants) if v == variant]
            model = state.models[variant]
            try:
                scores = model.score(rows[idx])
            except Exception as error:  # a failing variant must not fail the request
                if variant == state.fallback:
                    raise
                self._failed(variant, model, error, rows, idx, requests)
                model = state.models[state.fallback]
                variant = state.fallback
                scores = model.score(rows[idx])
            for j, i in enumerate(idx):
                answers[i] = (variant, model.version, float(scores[j]))
        return answers

    def _failed(self, variant, model, error, rows, idx, requests) -> None:
        if self.metrics:
            self.metrics["mlops_request_errors"].labels(variant, "fallback").inc(len(idx))
        if self.log is None:
            return
        now = datetime.now(UTC).isoformat()
        for i in idx:
            record = {
                "request_id": uuid.uuid4().hex,
                "customer_id": requests[i].customer_id,
                "application_id": requests[i].application_id,
                "variant": variant,
                "model_version": model.version,
                "score": None,
                "prediction": None,
            }
            self._record(record, rows[i], now, 0.0, error=f"{type(error).__name__}: {error}")

    def _record(self, answer: dict, row: np.ndarray, now: str, latency_ms: float, error=None):
        if self.metrics and error is None:
            self.metrics["mlops_predictions"].labels(
                answer["variant"], answer["model_version"]
            ).inc()
            self.metrics["mlops_prediction_latency_seconds"].labels(answer["variant"]).observe(
                latency_ms / 1000
            )
            self.metrics["mlops_prediction_score"].labels(answer["variant"]).observe(
                answer["score"]
            )
        if self.log is not None:
            self.log.write(
                {
                    **answer,
                    "timestamp": now,
                    "features": features_dict(self.feature_names, row),
                    "latency_ms": round(latency_ms, 3),
                    "shadow": False,
                    "error": error,
                }
            )

    # -- policy reloads -----------------------------------------------------------------------

    @property
    def policy(self) -> TrafficPolicy:
        return self._state.policy

    def apply_policy(self, policy: TrafficPolicy, models: dict[str, LoadedModel]) -> None:
        """Swap in a new policy and its live models in one assignment (atomic for readers)."""
        self._state = _make_state(policy, models)
        if self.shadows is not None:
            self.shadows.policy_changed(policy)
        self._export_model_info()

    def watch(self, path: Path, loader, every_s: float = 1.0) -> None:
        """Poll ``path`` and apply it when it changes; ``loader(policy)`` loads its models."""
        self._loader = loader

        def run() -> None:
            seen = _mtime(path)
            while not self._stop.wait(every_s):
                now = _mtime(path)
                if now == seen:
                    continue
                seen = now
                with contextlib.suppress(Exception):  # a bad file keeps the last good policy
                    from ml.serve.traffic import load_policy

                    policy = load_policy(path)
                    self.apply_policy(policy, loader(policy, self._state.models))

        self._poller = threading.Thread(target=run, name="policy-watch", daemon=True)
        self._poller.start()

    def close(self) -> None:
        self._stop.set()
        if self.shadows is not None:
            self.shadows.close()
        if self.log is not None:
            self.log.close()

    def _export_model_info(self) -> None:
        if not self.metrics:
            return
        gauge = self.metrics["mlops_model_info"]
        for variant, model in self._state.models.items():
            gauge.labels(variant, model.name, model.version).set(1)


def features_dict(names: list[str], row: np.ndarray) -> dict[str, float | None]:
    """Feature name → value, None where missing (JSON has no NaN)."""
    return {n: (None if v != v else float(v)) for n, v in zip(names, row.tolist(), strict=True)}


def _make_state(policy: TrafficPolicy, models: dict[str, LoadedModel]) -> _State:
    live = policy.live_variants()
    missing = [v for v in live if v not in models]
    if missing:
        raise ValueError(f"no model loaded for live variants {missing}")
    if policy.canary is not None:
        fallback = policy.canary.baseline
    else:
        weights = policy.effective_weights()
        fallback = max(live, key=lambda v: weights[v])
    if fallback not in models:
        fallback = live[0]
    return _State(policy, policy.router(), {v: models[v] for v in live}, fallback)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return -1.0
