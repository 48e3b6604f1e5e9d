"""The governance configuration (``governance.yaml``), validated once into typed models."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ml.errors import UserError

DEFAULT_PATH = Path(__file__).parent / "governance.yaml"
Action = Literal["register", "request", "approve", "reject", "release", "promote", "rollback"]
MlflowPermission = Literal["READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleConfig(_Strict):
    actions: list[Action] = Field(default_factory=list)
    mlflow_permission: MlflowPermission = "READ"


class FairnessBounds(_Strict):
    demographic_parity_difference: float = Field(gt=0, le=1)
    equalized_odds_difference: float = Field(gt=0, le=1)


class FairnessConfig(_Strict):
    protected_attributes: list[str] = Field(min_length=1)
    intersections: list[list[str]] = Field(default_factory=list)
    bounds: dict[str, FairnessBounds]
    min_group_size: int = Field(ge=1)
    min_group_outcomes: int = Field(ge=1)
    gate_on: Literal["point", "ci_lower"] = "point"
    bootstrap_samples: int = Field(ge=20, le=10_000)
    confidence_level: float = Field(gt=0.5, lt=1)

    @model_validator(mode="after")
    def _has_default_bounds(self) -> FairnessConfig:
        if "default" not in self.bounds:
            raise ValueError("bounds needs a `default` entry")
        return self

    def bounds_for(self, attributes: tuple[str, ...]) -> FairnessBounds:
        """The bounds of an attribute set: its own entry (``a+b`` for intersections) or default."""
        return self.bounds.get("+".join(attributes), self.bounds["default"])


class ExplanationConfig(_Strict):
    permutation_repeats: int = Field(ge=1, le=50)
    sample_cases: int = Field(ge=1, le=10)
    top_features: int = Field(ge=1, le=20)


# What an automatic approval can check on the version (ml.governance.auto_approval).
AutoCheck = Literal["review_requested", "model_card", "fairness_gate_passed"]


class AutoApprovalPolicy(_Strict):
    name: str = Field(min_length=1)
    account: str = Field(min_length=1)  # the user it acts as; needs a role that may approve
    transitions: list[Literal["approve"]] = Field(min_length=1)
    checks: list[AutoCheck] = Field(min_length=1)


class GovernanceConfig(_Strict):
    roles: dict[str, RoleConfig] = Field(min_length=1)
    users: dict[str, list[str]] = Field(default_factory=dict)
    # MLflow server usernames that act as another governance user (the platform's workload
    # accounts); any other MLflow user is the governance user of the same name.
    mlflow_users: dict[str, str] = Field(default_factory=dict)
    default_mlflow_permission: MlflowPermission = "READ"
    fairness: FairnessConfig
    explanations: ExplanationConfig
    auto_approval: list[AutoApprovalPolicy] = Field(default_factory=list)

    @model_validator(mode="after")
    def _users_hold_known_roles(self) -> GovernanceConfig:
        for user, roles in self.users.items():
            unknown = sorted(set(roles) - set(self.roles))
            if unknown:
                raise ValueError(f"user {user!r} has unknown role(s) {unknown}")
        for mlflow_user, user in self.mlflow_users.items():
            if user not in self.users:
                raise ValueError(f"mlflow_users: {mlflow_user!r} maps to unknown user {user!r}")
        for policy in self.auto_approval:
            actions = {
                a for role in self.users.get(policy.account, []) for a in self.roles[role].actions
            }
            if not set(policy.transitions) <= actions:
                raise ValueError(
                    f"auto_approval {policy.name!r}: account {policy.account!r} holds no role "
                    f"that may {', '.join(policy.transitions)}"
                )
        return self

    def governance_user(self, mlflow_user: str) -> str:
        """The governance user an MLflow server username acts as."""
        return self.mlflow_users.get(mlflow_user, mlflow_user)


def config_path() -> Path:
    """The config file in force: ``MLOPS_GOVERNANCE_CONFIG`` or the packaged default."""
    from ml.settings import get_settings

    return get_settings().governance_config or DEFAULT_PATH


def load_governance_config(path: Path | None = None) -> GovernanceConfig:
    """Read and validate the governance config; a bad value names its key in one line."""
    return _load(path or config_path())


@cache
def _load(path: Path) -> GovernanceConfig:
    if not path.exists():
        raise UserError(
            f"governance config {path} does not exist", "check MLOPS_GOVERNANCE_CONFIG"
        )
    try:
        return GovernanceConfig.model_validate(yaml.safe_load(path.read_text()))
    except yaml.YAMLError as error:
        raise UserError(f"{path} is not valid YAML ({error})", "fix the file") from None
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise UserError(f"{path}: {key}: {first['msg']}", "fix that value") from None
