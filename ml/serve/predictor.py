"""The request path: assign a variant, read online features, score a numpy row, log.

Per request this does one salted hash, one online-store read per feature view, one
``predict_proba`` on a (1, n) float array (no pandas DataFrame: it cost more than the model,
see docs/serving.md), and enqueues the log record and any shadow copies to background threads.
The policy file is polled once a second (by content, so kubelet's symlink swap of a mounted
ConfigMap is seen) and the registry aliases every few seconds; the new state is swapped in
whole, so a rollout decision or a promotion takes effect without a restart. With no servable
live variant (a fresh platform has no champion) the predictor is not ready and refuses to score.
"""

from __future__ import annotations

import hashlib
import logging
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

log = logging.getLogger(__name__)


class UnknownCustomer(LookupError):
    """The feature store knows none of the customer's features."""

    def __init__(self, positions: list[int], customer_ids: list[int]) -> None:
        self.positions = positions
        self.customer_ids = customer_ids
        super().__init__(f"customer_id {customer_ids[0]} not found in the feature store")


class NotReady(RuntimeError):
    """No live variant of the policy has a servable model (yet)."""


@dataclass(frozen=True)
class _State:
    policy: TrafficPolicy
    router: Router | None  # None: nothing servable
    models: dict[str, LoadedModel]  # live variants that are loaded
    fallback: str | None  # variant that answers when another one fails


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
        self.skipped: dict[str, str] = {}
        self._exported: set[tuple[str, str, str]] = set()
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._export_model_info()

    # -- request path -------------------------------------------------------------------------

    def predict(self, request: ScoreRequest) -> dict:
        """Score one request; raises :class:`UnknownCustomer` for an unknown entity."""
        return self.predict_many([request])[0]

    @property
    def ready(self) -> bool:
        """Whether a live variant can answer (``/readyz``)."""
        return self._state.router is not None

    def not_ready_reason(self) -> str:
        skipped = "; ".join(f"{n}: {why}" for n, why in self.skipped.items())
        return f"no servable live variant ({skipped or 'none configured'})"

    def count_errors(self, customer_ids: Sequence[int], code: str) -> None:
        """Count client-visible failures under the variant the sticky router assigns each id."""
        if not self.metrics:
            return
        router = self._state.router
        counter = self.metrics["mlops_request_errors"]
        for customer_id in customer_ids:
            counter.labels(router.assign(customer_id) if router else "none", code).inc()

    def predict_many(self, requests: Sequence[ScoreRequest]) -> list[dict]:
        """Score requests, all or none: raises :class:`UnknownCustomer` naming the unknown."""
        if not self.ready:
            raise NotReady(self.not_ready_reason())
        values, found = self.reader.read([r.customer_id for r in requests])
        if not found.all():
            missing = [i for i, ok in enumerate(found) if not ok]
            raise UnknownCustomer(missing, [requests[i].customer_id for i in missing])
        return self._score(requests, values)

    def predict_each(self, requests: Sequence[ScoreRequest]) -> list[dict | UnknownCustomer]:
        """Score independent requests together; unknown customers get an error each."""
        if not self.ready:
            raise NotReady(self.not_ready_reason())
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
        if state.router is None:  # the models were withdrawn since the caller checked
            raise NotReady(self.not_ready_reason())
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
                if state.fallback is None or variant == state.fallback:
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

    def apply_policy(
        self,
        policy: TrafficPolicy,
        models: dict[str, LoadedModel],
        shadow_models: dict[str, LoadedModel] | None = None,
    ) -> None:
        """Swap in a new policy and its live models in one assignment (atomic for readers)."""
        self._state = _make_state(policy, models)
        if self.shadows is not None:
            if shadow_models is not None:
                self.shadows.models = shadow_models
            self.shadows.policy_changed(policy)
        self._export_model_info()

    def report_skipped(self, skipped: dict[str, str]) -> None:
        """Log (on change) and export the variants that have no servable model."""
        if skipped != self.skipped:
            for name, why in skipped.items():
                log.warning("variant %s skipped: %s", name, why)
        self.skipped = skipped
        if self.metrics:
            gauge = self.metrics["mlops_variant_available"]
            for name in self.skipped:
                gauge.labels(name).set(0)
            for name in self._state.models:
                gauge.labels(name).set(1)

    def refresh(self, policy: TrafficPolicy, loader) -> bool:
        """Re-resolve ``policy``'s models with ``loader``; apply if anything changed."""
        live, shadow_models, skipped = loader(policy, self._state.models)
        state = self._state
        current = {n: m.version for n, m in state.models.items()}
        shadows = self.shadows.models if self.shadows is not None else {}
        changed = (
            policy != state.policy
            or current != {n: m.version for n, m in live.items()}
            or {n: m.version for n, m in shadows.items()}
            != {n: m.version for n, m in shadow_models.items()}
        )
        if changed:
            self.apply_policy(policy, live, shadow_models)
            log.info("serving %s", {n: m.version for n, m in live.items()} or "nothing")
        self.report_skipped(skipped)
        return changed

    def watch(self, path: Path, loader, policy_every_s: float = 1.0, models_every_s: float = 5.0):
        """Follow ``path`` and the registry in a daemon thread; apply what changes.

        The file is compared by content, not mtime: kubelet updates a mounted ConfigMap by
        swapping the ``..data`` symlink, which leaves the path's own mtime unchanged.
        ``loader(policy, current_models) -> (live, shadows, skipped)`` resolves the aliases.
        """

        initial = _digest(path)  # now, not in the thread: an edit right after must be seen

        def run() -> None:
            seen, next_models = initial, time.monotonic() + models_every_s
            while not self._stop.wait(policy_every_s):
                digest = _digest(path)
                due = time.monotonic() >= next_models
                if digest == seen and not due:
                    continue
                try:
                    policy = self.policy
                    if digest != seen:
                        from ml.serve.traffic import load_policy

                        policy = load_policy(path)
                    self.refresh(policy, loader)
                    seen = digest
                except Exception as error:  # a bad file or a registry outage keeps the last state
                    log.warning("policy/model refresh failed: %s", error)
                    seen = digest  # do not retry a bad file every second; the next edit will do
                if due:
                    next_models = time.monotonic() + models_every_s

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
        now = {(v, m.name, m.version) for v, m in self._state.models.items()}
        # A swapped-out version must stop reporting 1. Set it to 0 rather than removing it:
        # in BentoML's multiprocess mode a removed label keeps its last value in the shared file.
        for labels in self._exported - now:
            gauge.labels(*labels).set(0)
        for labels in now:
            gauge.labels(*labels).set(1)
        self._exported = now


def features_dict(names: list[str], row: np.ndarray) -> dict[str, float | None]:
    """Feature name → value, None where missing (JSON has no NaN)."""
    return {n: (None if v != v else float(v)) for n, v in zip(names, row.tolist(), strict=True)}


def _make_state(policy: TrafficPolicy, models: dict[str, LoadedModel]) -> _State:
    """Route over the live variants that have a model; the skipped ones' share goes to them."""
    weights = {n: w for n, w in policy.effective_weights().items() if w > 0 and n in models}
    if not weights:
        return _State(policy, None, {}, None)
    total = sum(weights.values())
    router = Router(policy.salt, {n: w / total for n, w in weights.items()})
    if policy.canary is not None and policy.canary.baseline in weights:
        fallback = policy.canary.baseline
    else:
        fallback = max(weights, key=lambda v: weights[v])
    return _State(policy, router, {v: models[v] for v in weights}, fallback)


def _digest(path: Path) -> bytes:
    """Hash of the file's content (follows symlinks); empty when it cannot be read."""
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except OSError:
        return b""
