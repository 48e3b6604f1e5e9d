"""The traffic policy: which variant serves a request, canary steps, and shadows.

One pydantic model, :class:`TrafficPolicy`, is the schema of the embedded server's policy file
and of the Kubernetes ModelServing component's ConfigMap: the component builds its ConfigMap
with this model, and the server validates what it reads with the same model (``ml.serve.traffic``
does the file I/O).

Assignment is sticky and deterministic: a request's key (the customer id) is hashed with the
policy's salt into a bucket in [0, 1), and the bucket falls into one variant's slice of the
cumulative weights. The same customer therefore always meets the same variant in every process,
and changing the salt reshuffles everyone (start a new experiment with a new salt). The canary's
slice comes first, so when a canary step grows its share every customer already on the canary
stays on it.
"""

from __future__ import annotations

import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_BUCKET_SCALE = float(2**64)


class VariantSpec(BaseModel):
    """A live variant: the model it serves and its share of traffic."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(
        min_length=1,
        description="Registry alias (e.g. 'champion') or version number (e.g. '3').",
    )
    weight: float = Field(ge=0, description="Relative share of live traffic.")


class ShadowSpec(BaseModel):
    """A shadow variant: gets a copy of live requests; its answers are logged, never returned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    model: str = Field(min_length=1, description="Registry alias or version number.")
    sample: float = Field(1.0, gt=0, le=1, description="Share of live requests copied.")


class CanaryPolicy(BaseModel):
    """A canary release of one variant against a baseline, advanced step by step by rules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variant: str = Field(description="The variant being released.")
    baseline: str = Field(description="The stable variant that gets the rest of their traffic.")
    steps: list[float] = Field(
        default_factory=lambda: [5.0, 25.0, 50.0, 100.0],
        min_length=1,
        description="Canary share (percent of baseline+canary traffic) at each step.",
    )
    step: int = Field(0, ge=0, description="Index of the current step.")
    state: Literal["running", "rolled_back", "completed"] = "running"
    min_requests: int = Field(200, ge=1, description="Canary requests needed before deciding.")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="Highest tolerated error rate.")
    max_p99_ms: float = Field(50.0, gt=0, description="Highest tolerated p99 latency (ms).")

    @model_validator(mode="after")
    def _steps_grow(self) -> CanaryPolicy:
        if any(not 0 < s <= 100 for s in self.steps):
            raise ValueError("canary steps are percentages in (0, 100]")
        if self.steps != sorted(self.steps):
            raise ValueError("canary steps must not decrease")
        if self.step >= len(self.steps):
            raise ValueError(f"step {self.step} is past the last of {len(self.steps)} steps")
        return self

    @property
    def share(self) -> float:
        """The canary's current share of baseline+canary traffic, in [0, 1]."""
        if self.state == "rolled_back":
            return 0.0
        if self.state == "completed":
            return 1.0
        return self.steps[self.step] / 100.0


class TrafficPolicy(BaseModel):
    """Which model serves which request: A/B weights, a canary, shadows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_name: str | None = Field(
        None, description="Registered model name (default: the MLOPS_MODEL_NAME setting)."
    )
    salt: str = Field(min_length=1, description="Hash salt; change it to start a new experiment.")
    key: Literal["customer_id"] = Field("customer_id", description="Request field hashed.")
    variants: dict[str, VariantSpec] = Field(min_length=1)
    canary: CanaryPolicy | None = None
    shadows: list[ShadowSpec] = Field(default_factory=list)
    shadow_queue_size: int = Field(
        1000, ge=1, le=1_000_000, description="Shadow copies buffered; more are dropped."
    )

    @model_validator(mode="after")
    def _consistent(self) -> TrafficPolicy:
        bad = [n for n in self.variants if not n.replace("-", "").replace("_", "").isalnum()]
        if bad:
            raise ValueError(f"variant names use letters, digits, '-' and '_': {bad}")
        if sum(v.weight for v in self.variants.values()) <= 0:
            raise ValueError("at least one variant needs a positive weight")
        if self.canary is not None:
            for role in ("variant", "baseline"):
                name = getattr(self.canary, role)
                if name not in self.variants:
                    raise ValueError(f"canary {role} {name!r} is not one of the variants")
            if self.canary.variant == self.canary.baseline:
                raise ValueError("canary variant and baseline must differ")
        clash = {s.name for s in self.shadows} & set(self.variants)
        if clash:
            raise ValueError(f"shadow names clash with variants: {sorted(clash)}")
        return self

    def effective_weights(self) -> dict[str, float]:
        """Normalised live shares, canary first (see the module docstring for why)."""
        weights = {name: spec.weight for name, spec in self.variants.items()}
        if self.canary is not None:
            pool = weights[self.canary.variant] + weights[self.canary.baseline]
            weights[self.canary.variant] = pool * self.canary.share
            weights[self.canary.baseline] = pool * (1 - self.canary.share)
            weights = {self.canary.variant: weights.pop(self.canary.variant), **weights}
        total = sum(weights.values())
        return {name: w / total for name, w in weights.items()}

    def router(self) -> Router:
        return Router(self.salt, self.effective_weights())

    def live_variants(self) -> list[str]:
        return [n for n, w in self.effective_weights().items() if w > 0]


class Router:
    """Sticky salted-hash assignment over fixed cumulative weights (cheap per request)."""

    def __init__(self, salt: str, weights: dict[str, float]) -> None:
        self.salt = salt.encode()
        self.names = [n for n, w in weights.items() if w > 0]
        cumulative, edges = 0.0, []
        for name in self.names:
            cumulative += weights[name]
            edges.append(cumulative)
        edges[-1] = 1.0  # guard against rounding leaving a gap at the top
        self.edges = edges

    def assign(self, key: int | str) -> str:
        """The variant for ``key``; the same key always gets the same variant."""
        point = bucket(self.salt, key)
        for name, edge in zip(self.names, self.edges, strict=True):
            if point < edge:
                return name
        return self.names[-1]


def bucket(salt: bytes, key: int | str) -> float:
    """A uniform point in [0, 1) from the salted key (blake2b, stable across processes)."""
    digest = hashlib.blake2b(salt + b":" + str(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _BUCKET_SCALE


def in_sample(salt: str, key: int | str, share: float) -> bool:
    """Whether ``key`` is in a sticky ``share`` of keys (used to sample shadow copies)."""
    return share >= 1.0 or bucket(f"{salt}:shadow".encode(), key) < share
