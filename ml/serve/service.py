"""The BentoML service: ``/predict`` (one application) and ``/predict_batch`` (up to 256).

Run it with ``mlops serve start`` (or ``bentoml serve ml.serve.service:CreditRiskService``).
Each worker process builds its own :class:`~ml.serve.predictor.Predictor` from the environment
(``MLOPS_*``; MLflow from ``MLOPS_MLFLOW_TRACKING_URI``). Until a live variant has a servable
model (a fresh platform has no champion) ``/readyz`` answers 503 and scoring answers 503; the
predictor's poller picks the model up without a restart. Input validation is BentoML's
pydantic validation of :mod:`ml.serve.schemas` (400 with the field's location); an unknown
customer is a 404 naming ``customer_id``; anything unexpected inside the predictor is reported
as a 500 and counted, so a fuzzing test can prove there are none. Every error body is an
:class:`~ml.serve.schemas.ErrorBody`, as ``/docs.json`` (:mod:`ml.serve.openapi`) documents:
this module answers its own errors itself, because BentoML renders a raised 4xx exception as a
JSON array and replaces a 5xx exception's message with a generic one. Client-visible errors are
counted in ``mlops_request_errors_total{variant, code}`` under the variant the router assigns.
"""

from __future__ import annotations

import asyncio
import gc
import time

import bentoml
from starlette.responses import JSONResponse

from ml.serve.openapi import OpenAPIDocument
from ml.serve.schemas import (
    BatchRequest,
    BatchResponse,
    ErrorBody,
    ErrorDetail,
    ScoreRequest,
    ScoreResponse,
)


def _settings():
    # The decorator needs the worker and thread counts when BentoML imports the module: read
    # them through the one validated settings object, so a bad MLOPS_SERVING_WORKERS stops the
    # server with one line naming it (as `mlops` does) instead of a default or a traceback.
    import sys

    from ml.errors import UserError
    from ml.settings import get_settings

    try:
        return get_settings()
    except UserError as error:
        print(f"error: {error.line()}", file=sys.stderr)
        raise SystemExit(2) from None


@bentoml.service(
    name="credit_risk",
    workers=_settings().serving_workers,
    threads=_settings().serving_threads,
    traffic={"timeout": 10},
    logging={"access": {"enabled": False}},
    # Tracing spans cost more CPU than the prediction itself on this path (profiled, see
    # docs/serving.md); every prediction is in the prediction log under its request_id instead.
    tracing={"excluded_urls": ["/predict", "/predict_batch"]},
)
class CreditRiskService:
    """Credit-default scoring under a traffic policy (A/B, canary, shadows)."""

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        from ml.serve.runtime import build_predictor
        from ml.settings import apply_process_defaults, get_settings

        apply_process_defaults()
        threadpool_limits(1)
        from ml.serve.readiness import WorkerReadiness

        self.predictor = build_predictor(get_settings(), watch=True)
        workers = _settings().serving_workers
        self.readiness = WorkerReadiness(workers, lambda: self.predictor.ready)
        self.readiness.watch()
        # Start-up leaves millions of long-lived objects (MLflow, Feast, BentoML, the model);
        # without this every full collection walks them all and stalls requests for tens of
        # milliseconds. Freezing moves them out of the collector's reach for good.
        gc.collect()
        gc.freeze()
        # Batches keep a request's objects alive across Python's default 700-allocation young
        # collections, so they were promoted and full collections (10-25 ms, every ~0.6 s per
        # worker) became the p99's main source; 50,000 lets them die young (docs/serving.md).
        gc.set_threshold(_settings().serving_gc_threshold, *gc.get_threshold()[1:])
        self.profile = _profile(self.predictor, _settings().serving_profile_dir)
        score_each = self.predictor.predict_each
        if self.profile is not None:
            score_each = self.profile.timed("batch", score_each)
        self.batcher = LoopBatcher(score_each, _settings().serving_max_batch, self.profile)

    def __is_ready__(self) -> bool:
        """``/readyz``: 200 once every worker has a servable model for a live variant."""
        return self.readiness.all_ready()

    @bentoml.on_shutdown
    def close(self) -> None:
        """Flush the prediction log and stop the background threads."""
        self.readiness.close()
        self.predictor.close()
        if self.profile is not None:
            self.profile.write()

    @bentoml.api(route="/predict", input_spec=ScoreRequest, output_spec=ScoreResponse)
    async def predict(self, **fields) -> ScoreResponse | JSONResponse:
        """Score one loan application (features for ``customer_id`` come from Feast)."""
        request = ScoreRequest.model_construct(**fields)  # already validated by BentoML
        from ml.serve.predictor import NotReady

        if not self.predictor.ready:
            return _not_ready(self.predictor.not_ready_reason())
        try:
            answer = await self.batcher.submit(request)
        except (NotReady, ScoringTimeout) as error:  # models withdrawn, or a stalled store
            return _not_ready(str(error))
        except Exception:
            self.predictor.count_errors([request.customer_id], "500")
            raise
        if isinstance(answer, LookupError):
            self.predictor.count_errors([request.customer_id], "404")
            msg = f"customer_id {request.customer_id}: not found in the feature store"
            return _not_found(msg, [["customer_id"]])
        return ScoreResponse.model_construct(**answer)

    @bentoml.api(route="/predict_batch", input_spec=BatchRequest, output_spec=BatchResponse)
    def predict_batch(self, requests: list[ScoreRequest]) -> BatchResponse | JSONResponse:
        """Score up to MAX_BATCH (256) applications in one call."""
        from ml.serve.predictor import NotReady, UnknownCustomer

        if not self.predictor.ready:
            return _not_ready(self.predictor.not_ready_reason())
        try:
            answers = self.predictor.predict_many(requests)
        except UnknownCustomer as error:
            self.predictor.count_errors(error.customer_ids, "404")
            where = ", ".join(
                f"requests[{i}].customer_id={c}"
                for i, c in zip(error.positions[:5], error.customer_ids[:5], strict=False)
            )
            locations: list[list[str | int]] = [
                ["requests", i, "customer_id"] for i in error.positions
            ]
            return _not_found(f"not found in the feature store: {where}", locations)
        except NotReady as error:
            return _not_ready(str(error))
        except Exception:
            self.predictor.count_errors([r.customer_id for r in requests], "500")
            raise
        return BatchResponse(predictions=[ScoreResponse.model_construct(**a) for a in answers])


# Serves /docs.json as valid OpenAPI 3.0 with the error bodies below (see ml.serve.openapi).
# (bentoml.service returns a Service object; its type hints say it returns the class.)
CreditRiskService.add_asgi_middleware(OpenAPIDocument, service=CreditRiskService)  # type: ignore[attr-defined]


def _not_found(message: str, locations: list[list[str | int]]) -> JSONResponse:
    msg = "not found in the feature store"
    detail = [ErrorDetail(loc=loc, msg=msg, type="not_found") for loc in locations]
    return _error(404, ErrorBody(error=message, detail=detail))


def _not_ready(reason: str) -> JSONResponse:
    # The reason is the operator's clue (which variant, why); BentoML would hide it.
    return _error(503, ErrorBody(error=reason))


def _error(status: int, body: ErrorBody) -> JSONResponse:
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


class ScoringTimeout(TimeoutError):
    """The batch's feature read and scoring did not finish in time (a stalled store)."""


def _profile(predictor, folder):
    """A latency recorder around the predictor's parts, when profiling is asked for."""
    if folder is None:
        return None
    from ml.serve.profiling import Profile

    profile = Profile(folder)
    predictor.reader.read = profile.timed("feature_read", predictor.reader.read)
    predictor._score_by_variant = profile.timed("model", predictor._score_by_variant)
    predictor._record = profile.timed("log", predictor._record)
    return profile


class LoopBatcher:
    """Scores every request pending on the event loop in one call, without waiting for more.

    Requests that arrive together (same loop iteration) share one feature-store read per view,
    one model call per variant and one log append, which is where a single request spends its
    CPU (profiled: docs/serving.md). Nothing waits for a batch to fill, so an idle server
    answers a lone request as fast as before; under load, batches grow by themselves.

    A batch is scored in a worker thread, one batch at a time, so the feature read (network I/O
    to Redis in a cluster) never blocks the event loop; requests that arrive meanwhile form
    the next batch. A batch not scored within ``timeout_s`` fails with :class:`ScoringTimeout`
    (its thread finishes in the background; the store's own socket timeout ends it).
    """

    def __init__(
        self, score_each, max_batch: int = 64, profile=None, timeout_s: float = 5.0
    ) -> None:
        self.score_each = score_each
        self.max_batch = max_batch
        self.timeout_s = timeout_s
        self.profile = profile  # ml.serve.profiling.Profile, or None
        self.pending: list[tuple[object, asyncio.Future, float]] = []
        self.draining: asyncio.Task | None = None
        self.watching: asyncio.Task | None = None

    async def submit(self, request):
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        entered = time.perf_counter()
        self.pending.append((request, future, entered))
        if self.draining is None or self.draining.done():
            self.draining = loop.create_task(self._drain())
        if self.profile is None:
            return await future
        if self.watching is None:
            self.watching = loop.create_task(self.profile.watch_loop())
        try:
            return await future
        finally:
            self.profile.add("request", time.perf_counter() - entered)

    async def _drain(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[: self.max_batch], self.pending[self.max_batch :]
            if self.profile is not None:
                self.profile.add("wait", time.perf_counter() - batch[0][2])
                self.profile.add("size", len(batch))
            _deliver(batch, await self._score([request for request, _, _ in batch]))

    async def _score(self, requests: list) -> list:
        scoring = asyncio.to_thread(self.score_each, requests)
        try:
            return await asyncio.wait_for(scoring, self.timeout_s)
        except TimeoutError:
            why = f"scoring did not finish within {self.timeout_s:g}s: is the online store slow?"
            error = ScoringTimeout(why)
            return [error] * len(requests)
        except Exception as error:  # surfaces as a 500 for each request of the batch
            return [error] * len(requests)


def _deliver(batch: list[tuple[object, asyncio.Future, float]], results: list) -> None:
    for (_, future, _), result in zip(batch, results, strict=True):
        if future.done():  # the client went away
            continue
        if isinstance(result, Exception) and not isinstance(result, LookupError):
            future.set_exception(result)
        else:
            future.set_result(result)
