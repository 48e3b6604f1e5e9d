"""Canary automation: advance while the canary is healthy, roll back as soon as it is not.

Each call of :func:`step_rollout` judges the canary on the traffic it served since the previous
decision (read from the prediction log), then advances it one step, holds (not enough traffic
yet), completes it (healthy at the last step), or rolls it back (error rate or p99 latency over
the policy's thresholds). The new policy is written atomically to the file the servers watch,
and every decision is appended, with its reason and the figures behind it, to a JSONL file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ml.serve.traffic import TrafficPolicy, load_policy, save_policy

Action = Literal["advance", "hold", "rollback", "complete"]


@dataclass(frozen=True)
class VariantStats:
    requests: int
    errors: int
    p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class Decision:
    timestamp: str
    action: Action
    variant: str | None
    from_share: float | None
    to_share: float | None
    reason: str
    stats: dict[str, dict] = field(default_factory=dict)


def window_stats(log: pd.DataFrame, since: pd.Timestamp | None = None) -> dict[str, VariantStats]:
    """Per live variant: requests (answered + failed), errors, p99 latency of answers."""
    live = log[~log["shadow"]]
    if since is not None:
        live = live[live["timestamp"] > since]
    stats = {}
    for variant, rows in live.groupby("variant"):
        failed = rows["error"].notna()
        latency = rows.loc[~failed, "latency_ms"].to_numpy(dtype=float)
        p99 = float(np.percentile(latency, 99)) if latency.size else None
        stats[str(variant)] = VariantStats(len(rows), int(failed.sum()), p99)
    return stats


def decide(
    policy: TrafficPolicy, stats: dict[str, VariantStats]
) -> tuple[Decision, TrafficPolicy]:
    """The next decision for the policy's canary and the policy that results from it."""
    now = datetime.now(UTC).isoformat()
    canary = policy.canary
    figures = {k: {**asdict(v), "error_rate": v.error_rate} for k, v in stats.items()}
    if canary is None or canary.state != "running":
        state = "no canary" if canary is None else f"canary {canary.state}"
        return Decision(now, "hold", None, None, None, f"{state}: nothing to do", figures), policy
    seen = stats.get(canary.variant, VariantStats(0, 0, None))
    share = canary.share

    def result(action: Action, reason: str, **changes) -> tuple[Decision, TrafficPolicy]:
        new = policy.model_copy(update={"canary": canary.model_copy(update=changes)})
        to_share = new.canary.share if new.canary else None
        return Decision(now, action, canary.variant, share, to_share, reason, figures), new

    if seen.requests and seen.error_rate > canary.max_error_rate:
        return result(
            "rollback",
            f"error rate {seen.error_rate:.2%} over {seen.requests} requests > "
            f"max {canary.max_error_rate:.2%}",
            state="rolled_back",
        )
    enough = seen.requests >= canary.min_requests
    if enough and seen.p99_ms is not None and seen.p99_ms > canary.max_p99_ms:
        return result(
            "rollback",
            f"p99 latency {seen.p99_ms:.1f} ms > max {canary.max_p99_ms:.1f} ms",
            state="rolled_back",
        )
    if seen.requests < canary.min_requests:
        return result("hold", f"{seen.requests} canary requests < {canary.min_requests} needed")
    healthy = (
        f"error rate {seen.error_rate:.2%} <= {canary.max_error_rate:.2%}, "
        f"p99 {seen.p99_ms:.1f} ms <= {canary.max_p99_ms:.1f} ms over {seen.requests} requests"
    )
    if canary.step + 1 >= len(canary.steps):
        return result("complete", f"healthy at the last step: {healthy}", state="completed")
    return result("advance", f"healthy: {healthy}", step=canary.step + 1)


def record(decision: Decision, path: Path) -> None:
    """Append ``decision`` to the JSONL decision log (never rewritten)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(asdict(decision)) + "\n")


def last_decision_time(path: Path) -> pd.Timestamp | None:
    if not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return pd.Timestamp(json.loads(lines[-1])["timestamp"]) if lines else None


def step_rollout(policy_path: Path, prediction_log: Path, decisions_path: Path) -> Decision:
    """Judge the canary on traffic since the last decision; apply and record the decision.

    Args:
        policy_path: The policy file the servers watch (rewritten atomically on a change).
        prediction_log: The servers' JSONL prediction log.
        decisions_path: Append-only JSONL of every decision.

    Returns:
        The decision taken.
    """
    from ml.serve.prediction_log import read_prediction_log

    policy = load_policy(policy_path)
    since = last_decision_time(decisions_path)
    decision, new_policy = decide(policy, window_stats(read_prediction_log(prediction_log), since))
    if new_policy != policy:
        save_policy(new_policy, policy_path)
    record(decision, decisions_path)
    return decision
