"""Drive a canary rollout to its end, recording every decision in the audit log.

Each round calls :func:`ml.serve.rollout.step_rollout` (the automatic rules: advance while
healthy, hold without enough traffic, roll back on errors or latency) and appends the decision
to the hash-chained audit log, so a release leaves the same trail whether CI or a person ran it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

from ml.errors import UserError
from ml.governance import audit
from ml.serve.rollout import Decision

FINAL = frozenset({"complete", "rollback"})
AUDIT_ACTION = "canary-decision"


def drive(
    model: str,
    version: str,
    step: Callable[[], Decision],
    *,
    actor: str,
    rounds: int,
    interval_s: float,
    record: Callable[..., dict] = audit.append,
    sleep: Callable[[float], None] = time.sleep,
    out: Callable[[str], None] = print,
) -> list[Decision]:
    """Step the canary up to ``rounds`` times, ``interval_s`` apart, until it completes.

    Returns:
        Every decision taken, in order; the last one is ``complete``.

    Raises:
        UserError: the canary was rolled back, or it had not finished after ``rounds`` steps.
    """
    decisions: list[Decision] = []
    subject = audit.model_subject(model, version)
    for round_ in range(1, rounds + 1):
        decision = step()
        decisions.append(decision)
        record(AUDIT_ACTION, subject, actor, asdict(decision))
        out(f"| {round_} | {decision.action} | {_share(decision)} | {decision.reason} |")
        if decision.action == "rollback":
            raise UserError(
                f"the canary of {model} version {version} was rolled back: {decision.reason}",
                "traffic is back on the champion; see the audit log and the prediction log",
            )
        if decision.action == "complete":
            return decisions
        sleep(interval_s)
    raise UserError(
        f"the canary of {model} version {version} had not finished after {rounds} steps",
        "run `mlops release canary` again to continue from the current step",
    )


def _share(decision: Decision) -> str:
    if decision.from_share is None:
        return "-"
    return f"{decision.from_share:.0%} → {decision.to_share or 0:.0%}"
