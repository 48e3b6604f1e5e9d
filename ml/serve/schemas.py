"""Request and response models of the scoring API; BentoML turns them into the OpenAPI schema.

Strict: wrong JSON types are rejected rather than coerced ("17" is not a customer id), unknown
fields are rejected (a misspelt field would otherwise be silently ignored), and NaN/inf are
rejected. Bounds keep every accepted value representable downstream (Feast keys are int64).
Every model writes its JSON Schema in OpenAPI 3.0's dialect (:mod:`ml.serve.openapi`), since
the served document declares 3.0. Every error answer of the scoring routes is an
:class:`ErrorBody`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import DEFAULT_REF_TEMPLATE

from ml.serve.openapi import OpenAPI30Schema

INT64_MAX = 2**63 - 1
MAX_BATCH = 256
TERMS = (12, 24, 36, 48, 60)
Term = Literal[12, 24, 36, 48, 60]


class ApiModel(BaseModel):
    """A model of the API: its JSON Schema is OpenAPI 3.0 unless a caller asks otherwise."""

    @classmethod
    def model_json_schema(
        cls,
        by_alias: bool | None = None,
        ref_template: str = DEFAULT_REF_TEMPLATE,
        schema_generator=OpenAPI30Schema,
        mode="validation",
        **kwargs,
    ):
        return super().model_json_schema(
            by_alias=by_alias,
            ref_template=ref_template,
            schema_generator=schema_generator,
            mode=mode,
            **kwargs,
        )


class ScoreRequest(ApiModel):
    """One loan application to score."""

    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: int = Field(gt=0, le=INT64_MAX, description="Feast entity id of the customer.")
    loan_amount: float = Field(
        gt=0, le=1e9, allow_inf_nan=False, description="Requested amount (currency units)."
    )
    term_months: Term = Field(description="Loan term in months.")
    application_id: int | None = Field(
        None, gt=0, le=INT64_MAX, description="Id to join the outcome back to this prediction."
    )


class ScoreResponse(ApiModel):
    """The live answer. Shadow answers are logged, never returned."""

    request_id: str
    customer_id: int
    application_id: int | None
    variant: str
    model_version: str
    score: float = Field(description="Predicted probability of default.")
    prediction: int = Field(description="1 = predicted to default (score >= threshold).")


class BatchRequest(ApiModel):
    """Up to MAX_BATCH applications scored in one call."""

    model_config = ConfigDict(extra="forbid", strict=True)

    requests: list[ScoreRequest] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResponse(ApiModel):
    predictions: list[ScoreResponse]


class ErrorDetail(ApiModel):
    """One problem with the request; the same shape as pydantic's validation errors."""

    loc: list[str | int] = Field(description='Where, e.g. ["requests", 3, "customer_id"].')
    msg: str
    type: str = Field(description='What kind, e.g. "greater_than", "not_found".')


class ErrorBody(ApiModel):
    """The body of every error answer of ``/predict`` and ``/predict_batch``."""

    error: str = Field(description="What went wrong, in one line.")
    detail: list[ErrorDetail] | None = Field(
        None, description="Per-field problems (400, 404); absent otherwise."
    )
