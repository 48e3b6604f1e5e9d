"""The release pipeline waits for a recorded approval (never approves) and audits the canary."""

from __future__ import annotations

import pytest

from ml.errors import UserError
from ml.release import approval, canary
from ml.serve.rollout import Decision


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _wait(statuses: list[str | None], timeout_s: float = 300) -> str:
    clock, seen = FakeClock(), iter(statuses)
    return approval.wait_for_approval(
        "credit-risk", "3", lambda: next(seen), timeout_s=timeout_s, interval_s=60,
        sleep=clock.sleep, clock=clock, out=lambda _line: None,
    )  # fmt: skip


def test_waits_until_a_reviewer_approval_is_recorded():
    assert _wait(["candidate", "candidate", "approved"]) == "approved"


def test_a_rejection_stops_the_release():
    with pytest.raises(UserError, match="rejected"):
        _wait(["candidate", "rejected"])


def test_no_approval_before_the_deadline_fails():
    with pytest.raises(UserError, match="no approval"):
        _wait(["candidate"] * 10, timeout_s=120)


def test_the_release_code_never_calls_approve():
    import inspect

    from ml.cli import release as cli

    for module in (approval, canary, cli):
        assert "approvals.approve" not in inspect.getsource(module)
        assert "governance approve" not in inspect.getsource(module).replace("`mlops gov", "")


def _decision(action: str) -> Decision:
    return Decision("2026-12-05T00:00:00+00:00", action, "challenger", 0.05, 0.25, "why")  # type: ignore[arg-type]


def _drive(actions: list[str], rounds: int = 5) -> tuple[list[tuple], list[Decision]]:
    audited: list[tuple] = []
    steps = iter(_decision(a) for a in actions)
    try:
        done = canary.drive(
            "credit-risk", "3", lambda: next(steps), actor="ci", rounds=rounds, interval_s=0,
            record=lambda *args: audited.append(args) or {}, sleep=lambda _s: None,
            out=lambda _line: None,
        )  # fmt: skip
    except UserError:
        done = []
    return audited, done


def test_each_canary_decision_is_audited_until_it_completes():
    audited, done = _drive(["hold", "advance", "complete"])
    assert [d.action for d in done] == ["hold", "advance", "complete"]
    assert [a[0] for a in audited] == [canary.AUDIT_ACTION] * 3
    assert audited[-1][1] == "credit-risk/3" and audited[-1][3]["action"] == "complete"


def test_a_rollback_is_audited_and_fails_the_release():
    audited, done = _drive(["advance", "rollback", "advance"])
    assert done == [] and [a[3]["action"] for a in audited] == ["advance", "rollback"]


def test_a_canary_that_has_not_finished_fails_after_its_rounds():
    audited, done = _drive(["hold"] * 5, rounds=3)
    assert done == [] and len(audited) == 3
