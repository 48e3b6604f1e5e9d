"""Automatic approval: an explicit policy in governance.yaml, evaluated by the approval code.

Off unless ``auto_approval`` lists a policy. A policy names the transitions it may make (only
``approve``), the checks that must all pass on the version, and the account it acts as; that
account must hold a role that may approve, so the approval goes through
:func:`ml.governance.approvals.approve` like a reviewer's: the same state machine, separation of
duties (never the version's owner) and, on an authenticating server, the same server rule and
authenticated identity. The audit entry's ``details.automatic`` holds the policy and each
check's result; a person's approval has ``automatic: false``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion

from ml.governance import approvals
from ml.governance.config import AutoApprovalPolicy, GovernanceConfig, load_governance_config

_CHECKS = {
    "review_requested": lambda tags: bool(tags.get(approvals.REVIEW_TAG)),
    "model_card": lambda tags: bool(tags.get(approvals.CARD_TAG)),
    "fairness_gate_passed": lambda tags: tags.get(approvals.FAIRNESS_TAG) == "passed",
}


@dataclass(frozen=True)
class Evaluation:
    policy: str
    checks: dict[str, bool]

    @property
    def passed(self) -> bool:
        return all(self.checks.values())


def evaluate(version: ModelVersion, policy: AutoApprovalPolicy) -> Evaluation:
    """Each of the policy's checks on the version's tags."""
    tags = version.tags or {}
    return Evaluation(policy.name, {check: _CHECKS[check](tags) for check in policy.checks})


def auto_approve(
    model_name: str,
    version: str,
    *,
    audit_path: Path | None = None,
    config: GovernanceConfig | None = None,
) -> tuple[approvals.Transition | None, list[Evaluation]]:
    """Approve ``version`` by the first approve policy whose checks all pass.

    Returns:
        The transition (None when no policy passed) and every policy's evaluation.
    """
    config = config or load_governance_config()
    current = approvals.require_version(model_name, str(version))
    evaluations = []
    for policy in config.auto_approval:
        if "approve" not in policy.transitions:
            continue
        evaluation = evaluate(current, policy)
        evaluations.append(evaluation)
        if evaluation.passed:
            role = _approving_role(config, policy.account)
            automatic = {"policy": policy.name, "checks": evaluation.checks}
            transition = approvals.approve(
                model_name, str(version), user=policy.account, role=role,
                comment=f"automatic approval by policy {policy.name!r}", automatic=automatic,
                audit_path=audit_path, config=config,
            )  # fmt: skip
            return transition, evaluations
    return None, evaluations


def _approving_role(config: GovernanceConfig, account: str) -> str:
    # The config validator made sure one exists.
    return next(r for r in config.users[account] if "approve" in config.roles[r].actions)
