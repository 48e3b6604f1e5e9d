"""Request and response models of the scoring API; BentoML turns them into the OpenAPI schema.

Strict: wrong JSON types are rejected rather than coerced ("17" is not a customer id), unknown
fields are rejected (a misspelt field would otherwise be silently ignored), and NaN/inf are
rejected. Bounds keep every accepted value representable downstream (Feast keys are int64).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

INT64_MAX = 2**63 - 1
MAX_BATCH = 256
TERMS = (12, 24, 36, 48, 60)
Term = Literal[12, 24, 36, 48, 60]


class ScoreRequest(BaseModel):
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


class ScoreResponse(BaseModel):
    """The live answer. Shadow answers are logged, never returned."""

    request_id: str
    customer_id: int
    application_id: int | None
    variant: str
    model_version: str
    score: float = Field(description="Predicted probability of default.")
    prediction: int = Field(description="1 = predicted to default (score >= threshold).")


class BatchRequest(BaseModel):
    """Up to MAX_BATCH applications scored in one call."""

    model_config = ConfigDict(extra="forbid", strict=True)

    requests: list[ScoreRequest] = Field(min_length=1, max_length=MAX_BATCH)


class BatchResponse(BaseModel):
    predictions: list[ScoreResponse]
