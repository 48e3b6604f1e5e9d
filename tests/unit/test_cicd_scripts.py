"""The scripts the CI/CD workflows call: cost difference, deploy + rollback, smoke, reaper."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pulumi.automation import ConfigValue

from ml.errors import UserError
from scripts import cost_diff, deploy, reaper, smoke

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
PROVIDER = {"type": "pulumi:providers:aws", "name": "aws", "inputs": {"region": "eu-west-1"}}
NAT = {"type": "aws:ec2/natGateway:NatGateway", "name": "nat-0", "inputs": {}}


# -- cost difference ------------------------------------------------------------------------


def _render(root: Path, stack: str, resources: list[dict]) -> None:
    (root / stack).mkdir(parents=True)
    (root / stack / "inventory.json").write_text(json.dumps(resources))


def test_cost_difference_prices_both_sides_alike_and_flags_new_stacks(tmp_path: Path) -> None:
    head, base = tmp_path / "head", tmp_path / "base"
    second_nat = {**NAT, "name": "nat-1"}
    _render(head, "aws-dev", [PROVIDER, NAT, second_nat])
    _render(head, "aws-prod", [PROVIDER, NAT])
    _render(head, "local", [{"type": "kubernetes:core/v1:Namespace", "name": "ns"}])
    _render(base, "aws-dev", [PROVIDER, NAT])
    costs = cost_diff.compare(cost_diff.aws_stacks(head), head, base)
    assert [c.stack for c in costs] == ["aws-dev", "aws-prod"]  # local creates nothing on AWS
    dev, prod = costs
    assert dev.difference == pytest.approx(dev.head.total / 2) and dev.difference > 0
    assert prod.base is None and prod.difference == prod.head.total
    text = cost_diff.to_markdown(costs)
    assert "new stack" in text and f"+{dev.difference:,.2f}" in text and "nat-1" in text


# -- deploy: up, smoke test, rollback -------------------------------------------------------


class Stack:
    """The part of the Automation API stack the deploy and reaper use; records calls."""

    def __init__(self, name: str, history=(), resources=(), config=None) -> None:
        self.name, self.calls = name, []
        self.workspace = SimpleNamespace(env_vars={})
        self._history, self._resources = list(history), list(resources)
        self._config = {k: ConfigValue(v) for k, v in (config or {}).items()}

    def up(self, **kwargs: Any) -> None:
        self.calls.append(("up", kwargs.get("message")))

    def history(self, page_size=None, page=None) -> list:
        return self._history

    def export_stack(self) -> Any:
        return SimpleNamespace(version=3, deployment={"resources": self._resources})

    def get_all_config(self) -> dict:
        return self._config

    def outputs(self) -> dict:
        return {}


def _update(commit: str, result: str = "succeeded", kind: str = "update") -> SimpleNamespace:
    return SimpleNamespace(kind=kind, result=result, environment={deploy.GIT_HEAD: commit})


def test_last_good_commit_skips_failed_updates_and_previews() -> None:
    history = [_update("c3", "failed"), _update("c2", kind="preview"), _update("c1")]
    assert deploy.last_good_commit(history) == "c1"
    assert deploy.last_good_commit([]) is None


def _deploy(stack: Stack, smoke_results: list[bool], tmp_path: Path) -> list[str]:
    results, restored = iter(smoke_results), Stack(stack.name)
    opened: list[str] = []

    def smoke_test(s) -> None:
        if not next(results):
            raise UserError("smoke test failed: serving/readyz")

    def rollback(name: str, commit: str) -> Stack:
        opened.append(commit)
        return restored

    deploy.up(stack, smoke_test=smoke_test, rollback=rollback, state_dir=tmp_path, out=print)
    return opened + [c[1] for c in restored.calls]


def test_a_healthy_deploy_saves_the_state_first_and_does_not_roll_back(tmp_path: Path) -> None:
    stack = Stack("aws-dev", [_update("a" * 40)])
    assert _deploy(stack, [True], tmp_path) == []
    assert stack.calls == [("up", None)]
    [saved] = tmp_path.glob("aws-dev-*-before.json")
    assert oct(saved.stat().st_mode & 0o777) == "0o600"


def test_a_failed_smoke_test_rolls_back_to_the_last_good_commit(tmp_path: Path) -> None:
    stack = Stack("aws-dev", [_update("b" * 40, "failed"), _update("a" * 40)])
    with pytest.raises(UserError, match="rolled back to aaaaaaaaaaaa"):
        _deploy(stack, [False, True], tmp_path)


def test_a_rollback_that_is_still_unhealthy_fails_too(tmp_path: Path) -> None:
    stack = Stack("aws-dev", [_update("a" * 40)])
    with pytest.raises(UserError, match="smoke test failed"):
        _deploy(stack, [False, False], tmp_path)


def test_the_rollback_runs_up_from_the_previous_commit(tmp_path: Path) -> None:
    stack = Stack("aws-dev", [_update("a" * 40)])
    steps: list[str] = []
    restored = Stack("aws-dev")

    def rollback(name: str, commit: str) -> Stack:
        steps.append(commit)
        return restored

    def failing(_s) -> None:
        if not restored.calls:
            raise UserError("smoke test failed")

    with pytest.raises(UserError):
        deploy.up(stack, smoke_test=failing, rollback=rollback, state_dir=tmp_path, out=print)
    assert steps == ["a" * 40] and restored.calls == [("up", "rollback to aaaaaaaaaaaa")]


def test_a_failed_first_deploy_has_nothing_to_roll_back_to(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="nothing to roll back to"):
        _deploy(Stack("aws-dev"), [False], tmp_path)


# -- smoke test -----------------------------------------------------------------------------


def test_smoke_retries_until_every_service_is_healthy() -> None:
    targets = [
        smoke.Target("mlops", "serving", 3000, "/readyz"),
        smoke.Target("mlops", "m", 1, "/h"),
    ]
    answers = {targets[0].proxy_path: iter([False, True]), targets[1].proxy_path: iter([True])}
    smoke.check(targets, lambda p: next(answers[p]), timeout_s=60, sleep=lambda _s: None)
    assert targets[0].proxy_path == "/api/v1/namespaces/mlops/services/serving:3000/proxy/readyz"


def test_smoke_fails_naming_the_unhealthy_service() -> None:
    clock = iter(range(0, 1000, 10))
    target = smoke.Target("mlops", "serving", 3000, "/readyz")
    with pytest.raises(UserError, match="serving/readyz"):
        smoke.check(
            [target], lambda _p: False, timeout_s=30, sleep=lambda _s: None,
            clock=lambda: next(clock),
        )  # fmt: skip


# -- TTL reaper -----------------------------------------------------------------------------


def _provider(expiry: str | None) -> dict:
    tags = {"tags": {"stack": "x", **({"expiry": expiry} if expiry else {})}}
    inputs = {"region": "eu-west-1", "defaultTags": json.dumps(tags)}
    return {"type": "pulumi:providers:aws", "urn": "urn::aws::provider", "inputs": inputs}


NAT_STATE = {"type": NAT["type"], "urn": "urn:pulumi:x::mlops::aws:ec2/natGateway:NatGateway::n"}


def _stacks() -> list[Stack]:
    past, future = (NOW - timedelta(hours=1)).isoformat(), (NOW + timedelta(hours=1)).isoformat()
    return [
        Stack("aws-dev-alice", resources=[_provider(past), NAT_STATE]),
        Stack("aws-dev-bob", resources=[_provider(future), NAT_STATE]),
        Stack("aws-dev-carol", resources=[_provider(None), NAT_STATE]),  # no expiry: kept
        Stack("local-dave", config={"mlops:expiresAt": past}),  # expiry from config
        Stack("aws-prod", resources=[_provider(past), NAT_STATE]),  # protected: never reaped
    ]


def test_the_reaper_destroys_exactly_the_expired_unprotected_stacks() -> None:
    destroyed: list[str] = []
    reaped = reaper.reap(
        _stacks(), now=NOW, destroyer=lambda s: destroyed.append(s.name), dry_run=False
    )
    assert destroyed == ["aws-dev-alice", "local-dave"]
    alice = reaped[0]
    assert alice.outcome == "destroyed" and alice.resources == 1 and alice.monthly_usd > 0
    assert reaped[1].monthly_usd is None  # nothing priced on a local cluster
    text = reaper.to_markdown(reaped, NOW)
    assert "aws-dev-alice" in text and f"{alice.monthly_usd:,.2f}" in text


def test_a_dry_run_destroys_nothing_and_a_failed_destroy_is_reported() -> None:
    calls: list[str] = []
    dry = reaper.reap(_stacks(), now=NOW, destroyer=calls.append, dry_run=True)
    assert calls == [] and {r.outcome for r in dry} == {"would destroy"}

    def failing(stack) -> None:
        raise UserError("export failed: MLflow unreachable")

    [first, *_] = reaper.reap(_stacks(), now=NOW, destroyer=failing, dry_run=False)
    assert first.outcome.startswith("left standing: export failed")
    assert "No stack" in reaper.to_markdown([], NOW)
