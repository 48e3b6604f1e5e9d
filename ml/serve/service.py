"""The BentoML service: ``/predict`` (one application) and ``/predict_batch`` (up to 256).

Run it with ``mlops serve start`` (or ``bentoml serve ml.serve.service:CreditRiskService``).
Each worker process builds its own :class:`~ml.serve.predictor.Predictor` from the environment
(``MLOPS_*``, ``MLFLOW_TRACKING_URI``). Input validation is BentoML's pydantic validation of
:mod:`ml.serve.schemas` (400 with the field's location); an unknown customer is a 404 naming
``customer_id``; anything unexpected inside the predictor is reported as a 500 and counted, so
a fuzzing test can prove there are none.
"""

from __future__ import annotations

import os

import bentoml
from bentoml.exceptions import NotFound

from ml.serve.schemas import BatchRequest, BatchResponse, ScoreRequest, ScoreResponse


def _env_int(name: str, default: int) -> int:
    # The decorator needs these when BentoML imports the module; they are runtime settings,
    # read from the environment the server process was started with.
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() and int(value) > 0 else default


@bentoml.service(
    name="credit_risk",
    workers=_env_int("MLOPS_SERVING_WORKERS", 2),
    threads=_env_int("MLOPS_SERVING_THREADS", 4),
    traffic={"timeout": 10},
    logging={"access": {"enabled": False}},
)
class CreditRiskService:
    """Credit-default scoring under a traffic policy (A/B, canary, shadows)."""

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        from ml.serve.runtime import build_predictor
        from ml.settings import apply_process_defaults, get_settings

        apply_process_defaults()
        threadpool_limits(1)
        self.predictor = build_predictor(get_settings(), watch=True)

    @bentoml.api(route="/predict", input_spec=ScoreRequest, output_spec=ScoreResponse)
    def predict(self, **fields) -> ScoreResponse:
        """Score one loan application (features for ``customer_id`` come from Feast)."""
        request = ScoreRequest.model_construct(**fields)  # already validated by BentoML
        try:
            answer = self.predictor.predict(request)
        except LookupError:
            msg = f"customer_id {request.customer_id}: not found in the feature store"
            raise NotFound(msg) from None
        return ScoreResponse.model_construct(**answer)

    @bentoml.api(route="/predict_batch", input_spec=BatchRequest, output_spec=BatchResponse)
    def predict_batch(self, requests: list[ScoreRequest]) -> BatchResponse:
        """Score up to MAX_BATCH (256) applications in one call."""
        from ml.serve.predictor import UnknownCustomer

        try:
            answers = self.predictor.predict_many(requests)
        except UnknownCustomer as error:
            where = ", ".join(
                f"requests[{i}].customer_id={c}"
                for i, c in zip(error.positions[:5], error.customer_ids[:5], strict=False)
            )
            raise NotFound(f"not found in the feature store: {where}") from None
        return BatchResponse(predictions=[ScoreResponse.model_construct(**a) for a in answers])
