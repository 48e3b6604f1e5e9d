"""The stack's configuration, read once into one frozen, validated object.

Every key lives in the ``mlops:`` namespace (plus ``aws:region`` for AWS stacks). Defaults and
descriptions live in exactly one place, the ``config:`` schema of ``Pulumi.yaml``; this module
only types and checks them. :func:`load` raises :class:`ml.errors.UserError` naming the first
bad key before the program creates any resource.
"""

from __future__ import annotations

import contextvars
import ipaddress
import json
import os
import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

from components.images import DIGEST_REF
from ml.errors import UserError

PROJECT = "mlops"
_CRON = re.compile(r"^(\S+\s+){4}\S+$")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,30}[a-z0-9])?$")
_GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$")
# The tag holding a stack's expiry time (ISO-8601); the TTL reaper (scripts/reaper.py) reads it.
EXPIRY_TAG = "expiry"


def _cron(value: str) -> str:
    if not _CRON.match(value.strip()):
        raise ValueError("expected a 5-field cron schedule such as '0 3 * * 0'")
    return value.strip()


def _digest_ref(value: str) -> str:
    if not DIGEST_REF.match(value):
        raise ValueError("expected an image pinned by digest: registry/repo@sha256:<64 hex>")
    return value


def _dns_label(value: str) -> str:
    if not _DNS_LABEL.match(value):
        raise ValueError("expected a lowercase DNS label (a-z, 0-9, '-'), at most 32 characters")
    return value


# EKS versions and the last day of their standard support (AWS's calendar,
# docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html, read 2026-12-05). After it
# the control plane bills $0.60/h instead of $0.10/h. Add new versions here as EKS releases them.
EKS_STANDARD_SUPPORT_ENDS = {
    "1.31": date(2025, 11, 26),
    "1.32": date(2026, 3, 23),
    "1.33": date(2026, 7, 29),
    "1.34": date(2026, 12, 2),
    "1.35": date(2027, 3, 27),
    "1.36": date(2027, 8, 2),
    "1.37": date(2027, 12, 1),
}


def _eks_version(value: str) -> str:
    if value not in EKS_STANDARD_SUPPORT_ENDS:
        known = ", ".join(EKS_STANDARD_SUPPORT_ENDS)
        raise ValueError(f"{value!r} is not an EKS version known here ({known})")
    return value


def _api_cidr(value: str) -> str:
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ValueError(f"{value!r} is not a CIDR such as 198.51.100.7/32") from None
    if network.prefixlen == 0:
        raise ValueError(f"{value} opens the EKS API to the whole internet; name your networks")
    return value


def _github_repository(value: str) -> str:
    if not _GITHUB_REPOSITORY.match(value):
        raise ValueError("expected the GitHub repository as owner/name, e.g. acme/mlops")
    return value


Cron = Annotated[str, AfterValidator(_cron)]
ImageRef = Annotated[str, AfterValidator(_digest_ref)]
DnsLabel = Annotated[str, AfterValidator(_dns_label)]
Positive = Annotated[int, Field(ge=1)]


class StackConfig(BaseModel):
    """One stack's settings; field ``serving_replicas`` is key ``mlops:servingReplicas``."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True
    )

    target: Literal["local", "aws"]
    owner: Annotated[str, Field(min_length=1)]
    ttl_hours: Annotated[int, Field(ge=0)]
    expires_at: datetime | None = None
    protect: bool
    namespace: DnsLabel
    kube_context: str | None = None
    storage_class: str | None = None
    ingress_class: str | None = None
    ingress_host: str | None = None
    ml_image: ImageRef
    serving_image: ImageRef
    serving_variants: Annotated[list[DnsLabel], Field(min_length=1)]
    traffic_weights: list[Annotated[int, Field(ge=0, le=100)]]
    shadow_variants: list[str]
    canary_steps: list[Annotated[int, Field(ge=1, le=100)]]
    serving_replicas: Positive
    serving_max_replicas: Positive
    materialize_schedule: Cron
    drift_schedule: Cron
    retrain_schedule: Cron
    retention_days: Positive
    # AWS only: S3 Object Lock on the bucket of the governance audit log
    audit_lock_mode: Literal["GOVERNANCE", "COMPLIANCE"]
    audit_lock_days: Positive
    # AWS only (ignored by the local target)
    region: str | None = None
    vpc_cidr: str
    availability_zones: Annotated[int, Field(ge=2, le=6)]
    kubernetes_version: Annotated[str, AfterValidator(_eks_version)]
    api_allowed_cidrs: list[Annotated[str, AfterValidator(_api_cidr)]]
    node_instance_types: Annotated[list[str], Field(min_length=1)]
    node_min_size: Positive
    node_desired_size: Positive
    node_max_size: Positive
    db_instance_class: str
    db_allocated_storage: Annotated[int, Field(ge=20)]
    db_multi_az: bool
    deletion_protection: bool
    final_snapshots: bool
    cache_node_type: str
    cache_nodes: Annotated[int, Field(ge=1, le=6)]
    # AWS only: the GitHub OIDC roles of docs/cicd.md (none unless a repository is named)
    github_repository: Annotated[str, AfterValidator(_github_repository)] | None = None
    github_environments: list[DnsLabel]
    github_oidc_provider_arn: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> StackConfig:
        _check(
            len(self.traffic_weights) == len(self.serving_variants),
            "trafficWeights",
            "needs one weight per entry of servingVariants",
        )
        _check("champion" in self.serving_variants, "servingVariants", "must include 'champion'")
        _check(
            set(self.shadow_variants) <= set(self.serving_variants),
            "shadowVariants",
            "must name entries of servingVariants",
        )
        live = [w for v, w in self.variant_weights() if v not in self.shadow_variants]
        _check(
            sum(live) == 100,
            "trafficWeights",
            f"weights of the live (non-shadow) variants must sum to 100, not {sum(live)}",
        )
        _check(
            self.serving_max_replicas >= self.serving_replicas,
            "servingMaxReplicas",
            "must be at least servingReplicas",
        )
        _check(
            self.node_min_size <= self.node_desired_size <= self.node_max_size,
            "nodeDesiredSize",
            "must lie between nodeMinSize and nodeMaxSize",
        )
        _check(
            not self.db_multi_az or self.cache_nodes >= 2,
            "cacheNodes",
            "Multi-AZ (dbMultiAz: true) needs at least 2 cache nodes",
        )
        _check(self.target != "aws" or bool(self.region), "aws:region", "AWS stacks need a region")
        return self

    def variant_weights(self) -> list[tuple[str, int]]:
        return list(zip(self.serving_variants, self.traffic_weights, strict=True))

    def tags(self, stack: str) -> dict[str, str]:
        """Tags/labels every cloud resource carries: who owns it, which stack, when it expires."""
        tags = {"owner": self.owner, "stack": stack, "project": PROJECT, "managed-by": "pulumi"}
        if self.ttl_hours:
            tags["ttl-hours"] = str(self.ttl_hours)
        if self.expires_at:
            tags[EXPIRY_TAG] = self.expires_at.isoformat()
        return tags


class _KeyError(ValueError):
    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise _KeyError(key, message)


def fields() -> dict[str, str]:
    """Config key (camelCase, as in Pulumi.yaml) -> field name."""
    return {f.alias or n: n for n, f in StackConfig.model_fields.items() if n != "region"}


def parse(raw: dict[str, str]) -> StackConfig:
    """Validate raw config strings (key without namespace -> value, as Pulumi passes them).

    Raises:
        UserError: naming the first wrong or missing key, e.g. ``mlops:servingReplicas``.
    """
    values: dict[str, object] = {}
    for key, value in raw.items():
        values[key] = _decode(value)
    try:
        return StackConfig.model_validate(values)
    except ValidationError as error:
        first = error.errors()[0]
        if isinstance(first.get("ctx", {}).get("error"), _KeyError):
            bad = first["ctx"]["error"]
            raise _user_error(bad.key, str(bad)) from None
        key = str(first["loc"][0]) if first["loc"] else "?"
        message = "is required" if first["type"] == "missing" else first["msg"]
        raise _user_error(key, message) from None


def _decode(value: str) -> object:
    """Arrays and objects arrive JSON-encoded; scalars stay strings for pydantic to coerce."""
    text = value.strip()
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return value
    return value


def _user_error(key: str, message: str) -> UserError:
    full = key if ":" in key else f"{PROJECT}:{key}"
    return UserError(
        f"bad config value {full}: {message}",
        f"fix it in stacks/Pulumi.<stack>.yaml or with `pulumi config set {full} ...`",
    )


# Set by the offline render (tests, the e2e, cost estimates): the committed stack files carry
# placeholder images until scripts/build_images.py pins real ones, and rendering may keep them.
RENDERING: contextvars.ContextVar[bool] = contextvars.ContextVar("rendering", default=False)

# Set by scripts/build_images.py for its targeted update that creates the image registries
# (nothing that pulls an image or runs a cluster), before there are images to pin.
REGISTRIES_ONLY_ENV = "MLOPS_REGISTRIES_ONLY"

# What the committed stack files hold until real values are set: an all-zero digest and AWS's
# documentation account. Deploying either ends in ImagePullBackOff.
_PLACEHOLDER_DIGEST = "@sha256:" + "0" * 64
_PLACEHOLDER_ACCOUNT = "123456789012"


def placeholders(cfg: StackConfig) -> list[str]:
    """Config keys whose value is still a placeholder, with what is wrong."""
    found = []
    for key, ref in (("mlImage", cfg.ml_image), ("servingImage", cfg.serving_image)):
        if ref.endswith(_PLACEHOLDER_DIGEST):
            found.append(f"{PROJECT}:{key} has the all-zero placeholder digest")
        elif ref.startswith(f"{_PLACEHOLDER_ACCOUNT}."):
            found.append(f"{PROJECT}:{key} names the placeholder account {_PLACEHOLDER_ACCOUNT}")
    return found


def refuse_placeholders(cfg: StackConfig, stack: str) -> None:
    """Raise when a stack about to be deployed still has placeholder images.

    Raises:
        UserError: naming the first placeholder and the command that replaces it.
    """
    found = placeholders(cfg)
    if found:
        raise UserError(
            f"stack {stack}: {found[0]}; a deploy would end in ImagePullBackOff",
            f"build and push the images first: uv run python -m scripts.build_images "
            f"--stack {stack}",
        )


def refuse_undeployable(cfg: StackConfig, stack: str, today: date | None = None) -> None:
    """What only matters when a stack is really deployed (the offline render skips it).

    Raises:
        UserError: an AWS stack whose EKS version is past standard support on ``today``, or
            with no CIDR allowed to reach its API endpoint.
    """
    if cfg.target != "aws":
        return
    today = today or datetime.now(UTC).date()
    ends = EKS_STANDARD_SUPPORT_ENDS[cfg.kubernetes_version]
    if today > ends:
        raise _user_error(
            "kubernetesVersion",
            f"EKS {cfg.kubernetes_version} left standard support on {ends}; the control plane "
            "would bill at extended-support rates ($0.60/h instead of $0.10/h)",
        )
    if not cfg.api_allowed_cidrs:
        raise _user_error(
            "apiAllowedCidrs",
            "no network may reach the EKS API, so neither pulumi nor kubectl could; set the "
            "CIDRs of the machines that deploy (e.g. your address as a.b.c.d/32)",
        )


def load() -> StackConfig:
    """Read the current stack's config from the Pulumi runtime (once, before any resource).

    Outside the offline render (and the registries-only update of ``scripts.build_images``),
    placeholder images are refused before anything is created.
    """
    cfg = pulumi.Config(PROJECT)
    raw = {key: value for key in fields() if (value := cfg.get(key)) is not None}
    region = pulumi.Config("aws").get("region")
    if region:
        raw["region"] = region
    parsed = parse(raw)
    if not RENDERING.get() and os.environ.get(REGISTRIES_ONLY_ENV) != "1":
        refuse_placeholders(parsed, pulumi.get_stack())
        refuse_undeployable(parsed, pulumi.get_stack())
    return parsed
