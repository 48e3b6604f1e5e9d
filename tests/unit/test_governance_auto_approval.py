"""Automatic approval: only an explicit policy approves, through the reviewer's code path."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from ml.errors import UserError
from ml.governance import approvals, audit
from ml.governance.auto_approval import auto_approve
from ml.governance.config import load_governance_config
from ml.governance.identity import SELF_DECLARED
from tests.conftest import mlflow_pointed_at

POLICY = {
    "name": "documented-and-fair",
    "account": "svc-governance",
    "transitions": ["approve"],
    "checks": ["review_requested", "model_card", "fairness_gate_passed"],
}


@pytest.fixture
def candidate(tmp_path):
    """(model, version, audit log) of a reviewed candidate on a throwaway local registry."""
    with mlflow_pointed_at(f"sqlite:///{tmp_path / 'mlflow.db'}"):
        client = MlflowClient()
        run = client.create_run(client.create_experiment("auto"))
        client.create_registered_model("credit-risk")
        version = client.create_model_version(
            "credit-risk", f"runs:/{run.info.run_id}/model", run.info.run_id
        ).version
        log = tmp_path / "audit.jsonl"
        for step in (approvals.register_candidate, approvals.request_review):
            step("credit-risk", version, user="alice", role="data_scientist", audit_path=log)
        client.set_model_version_tag("credit-risk", version, approvals.CARD_TAG, "runs:/x/card.md")
        yield "credit-risk", str(version), log


def _config(*policies):
    real = load_governance_config()
    users = {**real.users, "svc-governance": ["reviewer"]}
    data = {**real.model_dump(), "users": users, "auto_approval": list(policies)}
    return type(real).model_validate(data)


def test_no_policy_means_no_automatic_approval(candidate):
    name, version, log = candidate
    assert load_governance_config().auto_approval == []  # the default: off
    transition, evaluations = auto_approve(name, version, audit_path=log)
    assert transition is None and evaluations == []
    with pytest.raises(UserError, match="not approved"):
        approvals.require_servable(name, version)


def test_a_matching_policy_approves_and_is_recorded_as_automatic(candidate):
    name, version, log = candidate
    MlflowClient().set_model_version_tag(name, version, approvals.FAIRNESS_TAG, "passed")
    transition, _ = auto_approve(name, version, audit_path=log, config=_config(POLICY))
    assert transition is not None and transition.to_status == approvals.APPROVED
    assert transition.user == "svc-governance"
    entry = audit.read(log)[-1]
    assert entry["action"] == "approve" and entry["actor"] == "svc-governance"
    assert entry["details"]["automatic"] == {
        "policy": "documented-and-fair",
        "checks": {"review_requested": True, "model_card": True, "fairness_gate_passed": True},
    }
    assert entry["details"]["identity"] == SELF_DECLARED  # a local store: nobody vouches
    assert audit.verify(log).ok


def test_a_policy_whose_checks_fail_does_not_approve(candidate):
    name, version, log = candidate
    MlflowClient().set_model_version_tag(name, version, approvals.FAIRNESS_TAG, "failed")
    transition, (evaluation,) = auto_approve(name, version, audit_path=log, config=_config(POLICY))
    assert transition is None
    assert evaluation.checks["fairness_gate_passed"] is False
    assert approvals.status(name)[0].status == approvals.CANDIDATE
    assert [e["action"] for e in audit.read(log)] == ["register", "request"]


def test_a_policy_must_act_as_an_account_that_may_approve():
    with pytest.raises(ValueError, match="holds no role that may approve"):
        _config({**POLICY, "account": "alice"})
