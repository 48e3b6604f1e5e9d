"""The approval workflow on a real MLflow registry: roles, separation of duties, serving gate."""

from __future__ import annotations

import mlflow
import pytest
from mlflow import MlflowClient

from ml import registry
from ml.errors import UserError
from ml.governance import approvals, audit


@pytest.fixture
def workflow(trained_platform, tmp_path):
    """A fresh version of a fresh model (from a real candidate run) and a fresh audit log."""
    name = f"gov-{tmp_path.name[-24:].replace('_', '-')}"
    run_id = trained_platform.outcome.candidates[0].run_id
    version = str(mlflow.register_model(f"runs:/{run_id}/model", name).version)
    path = tmp_path / "audit.jsonl"

    def act(action, user, role, **kwargs):
        function = getattr(approvals, action)
        return function(name, version, user=user, role=role, audit_path=path, **kwargs)

    return name, version, path, act


def _document(name: str, version: str, fairness: str = "passed") -> None:
    """Stand-in for the model card's tags (the card itself is tested in test_governance_card)."""
    client = MlflowClient()
    client.set_model_version_tag(name, version, approvals.CARD_TAG, "runs:/x/model_card.md")
    client.set_model_version_tag(name, version, approvals.FAIRNESS_TAG, fairness)


def test_self_approval_is_refused(workflow):
    name, _, _, act = workflow
    act("register_candidate", "dave", "data_scientist")
    act("request_review", "dave", "data_scientist")
    with pytest.raises(UserError, match=r"registered .* may not approve it"):
        act("approve", "dave", "reviewer")
    assert approvals.status(name)[0].status == approvals.CANDIDATE


@pytest.mark.parametrize(
    ("user", "role", "message"),
    [
        ("mallory", "reviewer", "not known to governance"),
        ("alice", "reviewer", "does not hold the role 'reviewer'"),
        ("alice", "data_scientist", "role 'data_scientist' may not approve"),
        ("bob", "wizard", "unknown role"),
    ],
)
def test_approval_needs_a_reviewer_role(workflow, user, role, message):
    _, _, _, act = workflow
    act("register_candidate", "alice", "data_scientist")
    act("request_review", "alice", "data_scientist")
    with pytest.raises(UserError, match=message):
        act("approve", user, role)


def test_full_lifecycle_is_recorded_and_gated(workflow):
    name, version, path, act = workflow
    act("register_candidate", "alice", "data_scientist")
    with pytest.raises(UserError, match="no review was requested"):
        act("approve", "bob", "reviewer")
    act("request_review", "alice", "data_scientist")
    with pytest.raises(UserError, match=r"cannot promote .* it is candidate"):
        act("promote_to_production", "carol", "release_manager")
    with pytest.raises(UserError, match="not approved: it may not be served"):
        approvals.require_servable(name, version)
    act("approve", "bob", "reviewer", comment="card reviewed")
    assert approvals.require_servable(name, version) == approvals.APPROVED
    with pytest.raises(UserError, match="has no model card"):
        act("promote_to_production", "carol", "release_manager")
    _document(name, version)
    act("promote_to_production", "carol", "release_manager")
    assert str(registry.alias_version(name, registry.CHAMPION).version) == version
    tags = MlflowClient().get_model_version(name, version).tags
    assert tags[approvals.STATUS_TAG] == approvals.PRODUCTION
    entries = audit.read(path)
    assert [e["action"] for e in entries] == ["register", "request", "approve", "promote"]
    assert tags[approvals.AUDIT_HASH_TAG] == entries[-1]["hash"]
    assert audit.verify(path).ok


def test_rejected_version_cannot_be_approved_or_served(workflow):
    name, version, _, act = workflow
    act("register_candidate", "alice", "data_scientist")
    with pytest.raises(UserError, match="needs a reason"):
        act("reject", "bob", "reviewer", reason=" ")
    act("reject", "bob", "reviewer", reason="fails on thin-file applicants")
    with pytest.raises(UserError, match=r"cannot approve .* it is rejected"):
        act("approve", "bob", "reviewer")
    with pytest.raises(UserError, match="rejected, not approved"):
        approvals.require_servable(name, version)


def test_unregistered_version_is_not_servable(trained_platform):
    run_id = trained_platform.outcome.candidates[0].run_id
    version = mlflow.register_model(f"runs:/{run_id}/model", "gov-unregistered").version
    with pytest.raises(UserError, match="not in the approval workflow"):
        approvals.require_servable("gov-unregistered", str(version))


def test_rollback_restores_the_previous_production_version(trained_platform, tmp_path):
    name, path = "gov-rollback", tmp_path / "audit.jsonl"
    run_id = trained_platform.outcome.candidates[0].run_id
    versions = [str(mlflow.register_model(f"runs:/{run_id}/model", name).version) for _ in "ab"]
    for version in versions:
        kwargs = {"audit_path": path}
        approvals.register_candidate(name, version, user="alice", role="data_scientist", **kwargs)
        approvals.request_review(name, version, user="alice", role="data_scientist", **kwargs)
        approvals.approve(name, version, user="bob", role="reviewer", **kwargs)
        _document(name, version)
        approvals.promote_to_production(
            name, version, user="carol", role="release_manager", **kwargs
        )
    assert approvals.production_versions(name) == [versions[1]]
    with pytest.raises(UserError, match="may not rollback"):
        approvals.rollback(name, user="bob", role="reviewer", reason="x", audit_path=path)
    restored = approvals.rollback(
        name, user="carol", role="release_manager", reason="error rate up", audit_path=path
    )
    assert restored.version == versions[0]
    assert approvals.production_versions(name) == [versions[0]]
    assert approvals.status(name)[0].status == approvals.REJECTED
    assert audit.read(path)[-1]["action"] == "rollback" and audit.verify(path).ok


def test_cli_reports_a_missing_role_in_one_line(trained_platform, monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from ml.cli.governance import app

    monkeypatch.setenv("MLFLOW_TRACKING_URI", trained_platform.tracking_uri)
    args = ["approve", trained_platform.champion_version, "--user", "alice", "--role", "reviewer",
            "--audit-log", str(tmp_path / "a.jsonl")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, UserError)
    assert "does not hold the role 'reviewer'" in result.exception.line()
    status = CliRunner().invoke(app, ["status", trained_platform.model_name])
    assert status.exit_code == 0 and "champion" in status.output


def test_release_as_challenger_then_promotion_clears_it(workflow):
    name, version, path, act = workflow
    act("register_candidate", "alice", "data_scientist")
    act("request_review", "alice", "data_scientist")
    with pytest.raises(UserError, match=r"cannot release .* it is candidate"):
        act("release", "carol", "release_manager", alias="challenger")
    act("approve", "bob", "reviewer")
    _document(name, version)
    with pytest.raises(UserError, match="champion moves only by `promote`"):
        act("release", "carol", "release_manager", alias="champion")
    with pytest.raises(UserError, match="role 'reviewer' may not release"):
        act("release", "bob", "reviewer", alias="challenger")
    act("release", "carol", "release_manager", alias="challenger")
    assert str(registry.alias_version(name, "challenger").version) == version
    act("promote_to_production", "carol", "release_manager")
    assert str(registry.alias_version(name, registry.CHAMPION).version) == version
    assert registry.alias_version(name, "challenger") is None
    assert [e["action"] for e in audit.read(path)][-2:] == ["release", "promote"]
