"""Governance config, the basic-auth permission plan, fairness metrics and explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
from sklearn.linear_model import LogisticRegression

from ml.errors import UserError
from ml.governance import explain, fairness
from ml.governance.config import load_governance_config
from ml.governance.permissions import permission_plan, plan_table


@pytest.fixture(scope="module")
def config():
    return load_governance_config()


def test_bad_config_names_the_key(tmp_path):
    from ml.governance.config import DEFAULT_PATH

    raw = yaml.safe_load(DEFAULT_PATH.read_text())
    raw["users"]["bob"] = ["admin"]
    path = tmp_path / "g.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match=r"user 'bob' has unknown role"):
        load_governance_config(path)
    raw["fairness"]["bootstrap_samples"] = 3
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match=r"fairness\.bootstrap_samples"):
        load_governance_config(path)


def test_permission_plan_follows_roles(config):
    plan = {g.user: g.permission for g in permission_plan("credit-risk", config)}
    assert plan["alice"] == "EDIT"  # data scientist registers versions
    assert plan["bob"] == "EDIT"  # reviewer writes approval tags
    assert plan["carol"] == "MANAGE"  # release manager moves aliases, grants access
    assert plan["erin"] == plan["svc-serving"] == "READ"
    assert all(g.resource_type == "registered_model" for g in permission_plan("m", config))
    assert "| carol | credit-risk | MANAGE |" in plan_table(permission_plan("credit-risk", config))


def _population(n: int = 4000, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    sensitive = pd.DataFrame(
        {"sex": rng.choice(["F", "M"], n), "age_band": rng.choice(["18-35", "36+"], n)}
    )
    y = rng.binomial(1, 0.2, n)
    fair_score = np.clip(0.6 * y + rng.normal(0.2, 0.15, n), 0, 1)
    return y, sensitive, fair_score


def test_fair_scores_pass_and_biased_scores_fail_the_gate(config):
    y, sensitive, score = _population()
    fair = fairness.fairness_report(y, score, sensitive, config.fairness, 0.5)
    assert fairness.fairness_gate(fair, config.fairness).passed
    biased_score = score + 0.4 * (sensitive["sex"] == "M").to_numpy()
    biased = fairness.fairness_report(y, biased_score, sensitive, config.fairness, 0.5)
    decision = fairness.fairness_gate(biased, config.fairness)
    assert not decision.passed
    assert any(r.startswith("sex: demographic parity") for r in decision.reasons)


def test_point_estimates_are_fairlearns_and_inside_their_intervals(config):
    y, sensitive, score = _population(seed=1)
    score = score + 0.1 * (sensitive["age_band"] == "36+").to_numpy()
    report = fairness.fairness_report(y, score, sensitive, config.fairness, 0.5)
    predicted = (score >= 0.5).astype(int)
    sex = report.results[0]
    assert sex.demographic_parity_difference.value == pytest.approx(
        demographic_parity_difference(y, predicted, sensitive_features=sensitive["sex"])
    )
    assert sex.equalized_odds_difference.value == pytest.approx(
        equalized_odds_difference(y, predicted, sensitive_features=sensitive["sex"])
    )
    for result in report.results:
        for gap in (result.demographic_parity_difference, result.equalized_odds_difference):
            assert gap.low <= gap.value + 1e-9 and gap.value - 1e-9 <= gap.high
    assert [r.name for r in report.results] == ["sex", "age_band", "sex × age_band"]


def test_small_groups_are_reported_but_not_gated(config):
    y, sensitive, score = _population(n=400)
    sensitive.loc[:9, "age_band"] = "tiny"
    report = fairness.fairness_report(y, score, sensitive, config.fairness, 0.5)
    tiny = next(g for g in report.results[1].groups if g.group == "tiny")
    assert tiny.count == 10 and not tiny.gated and tiny.gate_note() == "no (too small)"


def test_case_explanation_points_the_right_way():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"utilization": rng.uniform(0, 1, 500), "income": rng.normal(50, 10, 500)})
    y = (X["utilization"] + rng.normal(0, 0.2, 500) > 0.7).astype(int)
    model = LogisticRegression().fit(X, y)
    row = pd.DataFrame({"utilization": [0.95], "income": [50.0]})
    case = explain.explain_case(model, row, X.median(), case_id="1", label="test", threshold=0.5)
    top = case.contributions.iloc[0]
    assert top["feature"] == "utilization" and top["contribution"] > 0.1
    assert "share of the credit limit in use" in case.summary and "raised" in case.summary


def test_sample_cases_are_distinct():
    picks = explain.pick_cases(np.array([0.1, 0.5, 0.9, 0.3]), 0.5, 3, seed=0)
    assert [label for _, label in picks][:1] == ["highest predicted risk"]
    assert len({p for p, _ in picks}) == 3


def test_the_users_file_must_map_names_to_passwords(tmp_path) -> None:
    from ml.governance.permissions import read_users_file

    good = tmp_path / "users.json"
    good.write_text('{"serving": "pw-1", "pipeline": "pw-2"}')
    assert read_users_file(good) == {"serving": "pw-1", "pipeline": "pw-2"}
    for text in ('["serving"]', '{"serving": ""}', "{not json"):
        good.write_text(text)
        with pytest.raises(UserError, match="users"):
            read_users_file(good)
    with pytest.raises(UserError, match="cannot read the users file"):
        read_users_file(tmp_path / "missing.json")
