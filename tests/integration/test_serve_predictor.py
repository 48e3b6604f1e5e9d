"""The request path in-process, on the real trained platform (MLflow registry + Feast)."""

import time
from types import SimpleNamespace

import numpy as np
import pytest

from ml.errors import UserError
from ml.serve.models import LoadedModel, ensure_servable, load_model, resolve_version
from ml.serve.prediction_log import read_prediction_log
from ml.serve.predictor import UnknownCustomer
from ml.serve.runtime import build_predictor
from ml.serve.schemas import ScoreRequest
from ml.serve.traffic import TrafficPolicy


@pytest.fixture
def no_approval(monkeypatch):
    monkeypatch.setenv("MLOPS_REQUIRE_APPROVAL", "false")


def _customers(platform, n=50):
    return sorted(platform.training_set["customer_id"].unique().tolist())[:n]


def _requests(platform, n=50):
    return [
        ScoreRequest(
            customer_id=int(c), loan_amount=5000.0 + i, term_months=36, application_id=i + 1
        )
        for i, c in enumerate(_customers(platform, n))
    ]


@pytest.fixture
def predictor(trained_platform, no_approval, tmp_path):
    policy = TrafficPolicy(salt="t", variants={"champion": {"model": "champion", "weight": 1}})
    made = build_predictor(
        trained_platform.settings, policy, tmp_path / "log.jsonl", trained_platform.store
    )
    yield made
    made.close()


def test_unapproved_version_is_refused(trained_platform, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLOPS_REQUIRE_APPROVAL", "true")
    # A version of its own: the shared champion's status is other tests' business.
    name = "serve-unapproved"
    run_id = trained_platform.outcome.winner.run_id
    fresh = str(mlflow.register_model(f"runs:/{run_id}/model", name).version)
    with pytest.raises(UserError, match="not in the approval workflow, not approved"):
        load_model(name, fresh, trained_platform.features)
    assert resolve_version(name, fresh).tags.get("governance.status") is None
    for status in ("approved", "production"):
        ensure_servable(SimpleNamespace(name="m", version="1", tags={"governance.status": status}))
    with pytest.raises(UserError, match="rejected"):
        ensure_servable(
            SimpleNamespace(name="m", version="1", tags={"governance.status": "rejected"})
        )


def test_feature_reader_matches_feast_sdk(trained_platform, predictor):
    from ml.features.store import online_features

    ids = _customers(trained_platform, 30)
    values, found = predictor.reader.read(ids)
    sdk = online_features(trained_platform.store, [{"customer_id": c} for c in ids], "credit_v1")
    expected = sdk[predictor.reader.names].to_numpy(dtype=float)
    assert found.all()
    np.testing.assert_allclose(values, expected, equal_nan=True)


def test_fast_scorer_equals_the_registered_model(trained_platform, predictor):
    import mlflow

    model = predictor._state.models["champion"]
    rows = trained_platform.training_set[trained_platform.features].head(200)
    reference = mlflow.pyfunc.load_model(f"models:/{trained_platform.model_name}@champion")
    expected = np.asarray(reference.predict(rows), dtype=float)[:, 1]  # pyfunc: predict_proba
    np.testing.assert_allclose(model.score(rows.to_numpy(dtype=float)), expected, atol=1e-9)


def test_unknown_customer_is_named(predictor):
    with pytest.raises(UnknownCustomer, match="customer_id 987654321"):
        predictor.predict(ScoreRequest(customer_id=987654321, loan_amount=1.0, term_months=12))


def test_prediction_log_has_the_monitoring_columns(trained_platform, predictor, tmp_path):
    answers = predictor.predict_many(_requests(trained_platform, 20))
    predictor.log.flush()
    log = read_prediction_log(tmp_path / "log.jsonl")
    assert len(log) == 20 and not log["shadow"].any()
    assert set(log["request_id"]) == {a["request_id"] for a in answers}
    assert set(log.iloc[0]["features"]) == set(trained_platform.features)
    assert str(log["timestamp"].dt.tz) == "UTC"


class _Broken:
    def predict_proba(self, rows):
        raise RuntimeError("shadow exploded")


class _Slow:
    def predict_proba(self, rows):
        time.sleep(0.2)
        return np.column_stack([np.zeros(len(rows)), np.ones(len(rows))])


def _p99_ms(predictor, requests, rounds=3):
    times = []
    for _ in range(rounds):
        for r in requests:
            start = time.perf_counter()
            predictor.predict(r)
            times.append((time.perf_counter() - start) * 1000)
    return float(np.percentile(times, 99))


@pytest.mark.parametrize("shadow", [_Broken, _Slow])
def test_shadow_never_changes_the_live_answer_or_its_p99(
    trained_platform, no_approval, tmp_path, shadow
):
    policy = TrafficPolicy(
        salt="t",
        variants={"champion": {"model": "champion", "weight": 1}},
        shadows=[{"name": "shadow", "model": "champion"}],
        shadow_queue_size=8,
    )
    predictor = build_predictor(
        trained_platform.settings, policy, tmp_path / "log.jsonl", trained_platform.store
    )
    requests = _requests(trained_platform, 50)
    real_shadow = predictor.shadows.models
    predictor.shadows.models = {}  # baseline: the shadow is configured but not scoring
    baseline_answers = [predictor.predict(r)["score"] for r in requests]
    baseline_p99 = _p99_ms(predictor, requests)
    live = real_shadow["shadow"]
    predictor.shadows.models = {"shadow": LoadedModel("m", "99", live.features, shadow())}
    answers = [predictor.predict(r)["score"] for r in requests]
    p99 = _p99_ms(predictor, requests)
    try:
        assert answers == baseline_answers
        assert p99 <= max(3 * baseline_p99, baseline_p99 + 5), (baseline_p99, p99)
        if shadow is _Slow:
            assert predictor.shadows.dropped > 0  # the bounded queue overflowed, copies dropped
        else:
            assert predictor.shadows.wait_idle() and predictor.shadows.errors > 0
    finally:
        predictor.close()


def test_failing_canary_falls_back_and_is_logged(trained_platform, predictor, tmp_path):
    live = predictor._state.models["champion"]
    broken = LoadedModel("m", "99", live.features, _Broken(), is_sklearn=True)
    policy = TrafficPolicy(
        salt="t",
        variants={
            "champion": {"model": "champion", "weight": 1},
            "canary": {"model": "99", "weight": 1},
        },
        canary={"variant": "canary", "baseline": "champion", "steps": [50]},
    )
    predictor.apply_policy(policy, {"champion": live, "canary": broken})
    answers = predictor.predict_many(_requests(trained_platform, 40))
    assert {a["variant"] for a in answers} == {"champion"}
    predictor.log.flush()
    log = read_prediction_log(tmp_path / "log.jsonl")
    failed = log[log["error"].notna()]
    assert len(failed) > 5 and set(failed["variant"]) == {"canary"}
