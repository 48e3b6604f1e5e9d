"""Traffic policy: allocation, stickiness, canary monotonicity, validation, committed schema."""

import json

import pytest

from ml.errors import UserError
from ml.serve.traffic import (
    SCHEMA_PATH,
    TrafficPolicy,
    in_sample,
    load_policy,
    policy_json_schema,
)

KEYS = range(1, 100_001)


def _policy(weights, **extra) -> TrafficPolicy:
    variants = {name: {"model": "champion", "weight": w} for name, w in weights.items()}
    return TrafficPolicy(salt="test-salt", variants=variants, **extra)


@pytest.mark.parametrize(
    "weights",
    [{"a": 1, "b": 1}, {"a": 9, "b": 1}, {"a": 0.2, "b": 0.3, "c": 0.5}, {"a": 1, "b": 0}],
)
def test_allocation_within_half_a_point_over_100k_keys(weights):
    router = _policy(weights).router()
    counts = dict.fromkeys(weights, 0)
    for key in KEYS:
        counts[router.assign(key)] += 1
    total = sum(weights.values())
    for name, weight in weights.items():
        assert abs(counts[name] / len(KEYS) - weight / total) <= 0.005, (name, counts)


def test_assignment_is_sticky_and_salted():
    first, again = _policy({"a": 1, "b": 1}).router(), _policy({"a": 1, "b": 1}).router()
    assert all(first.assign(k) == again.assign(k) for k in range(1, 5001))
    other = TrafficPolicy(salt="new-experiment", variants=_policy({"a": 1, "b": 1}).variants)
    moved = sum(first.assign(k) != other.router().assign(k) for k in range(1, 5001))
    assert 2000 < moved < 3000  # a new salt reshuffles about half of the customers


def test_canary_steps_keep_canary_customers_and_hit_the_share():
    canary = {"variant": "new", "baseline": "old", "steps": [5, 25, 50, 100]}
    shares, previous = [], None
    for step in range(4):
        router = _policy({"old": 1, "new": 1}, canary={**canary, "step": step}).router()
        on_canary = {k for k in KEYS if router.assign(k) == "new"}
        shares.append(len(on_canary) / len(KEYS))
        if previous is not None:
            assert previous <= on_canary  # nobody is moved back and forth between steps
        previous = on_canary
    assert [round(s, 2) for s in shares] == [0.05, 0.25, 0.5, 1.0]


def test_rolled_back_canary_gets_no_traffic():
    policy = _policy(
        {"old": 1, "new": 1}, canary={"variant": "new", "baseline": "old", "state": "rolled_back"}
    )
    assert policy.live_variants() == ["old"]


def test_shadow_sample_is_sticky():
    picked = [k for k in range(1, 20_001) if in_sample("s", k, 0.1)]
    assert abs(len(picked) / 20_000 - 0.1) < 0.01
    assert picked == [k for k in range(1, 20_001) if in_sample("s", k, 0.1)]


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"variants": {}}, "variants"),
        ({"variants": {"a": {"model": "champion", "weight": -1}}}, "weight"),
        ({"canary": {"variant": "zzz", "baseline": "a"}}, "canary variant"),
        ({"shadows": [{"name": "a", "model": "challenger"}]}, "clash"),
        ({"canary": {"variant": "a", "baseline": "b", "steps": [50, 5]}}, "decrease"),
    ],
)
def test_bad_policy_names_the_problem(tmp_path, bad, field):
    raw = {
        "salt": "s",
        "variants": {"a": {"model": "1", "weight": 1}, "b": {"model": "2", "weight": 1}},
    }
    raw.update(bad)
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(UserError, match=field):
        load_policy(path)


def test_default_policy_loads():
    assert load_policy().live_variants() == ["champion"]


def test_committed_schema_is_current():
    committed = json.loads(SCHEMA_PATH.read_text())
    assert committed == json.loads(json.dumps(policy_json_schema())), (
        "run `mlops serve write-schema` and commit ml/serve/traffic_policy.schema.json"
    )
