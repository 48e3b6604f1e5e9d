"""The real HTTP server (BentoML, separate process): answers, bad input, fuzzing, experiment.

One server for the module: an A/A experiment (two live variants on the champion) with a shadow,
so the prediction log it writes is analysed end to end at the end.
"""

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV30SpecValidator, validate
from schemathesis import GenerationMode

from ml.serve.experiment import analyze_experiment
from ml.serve.prediction_log import read_prediction_log
from ml.serve.schemas import MAX_BATCH
from ml.serve.server import start_server
from ml.serve.traffic import TrafficPolicy

POLICY = TrafficPolicy(
    salt="http-test",
    variants={
        "champion": {"model": "champion", "weight": 1},
        "twin": {"model": "champion", "weight": 1},
    },
    shadows=[{"name": "shadow", "model": "champion"}],
)


@pytest.fixture(scope="module")
def server(trained_platform, tmp_path_factory):
    log = tmp_path_factory.mktemp("serving") / "predictions.jsonl"
    env = {"MLOPS_REQUIRE_APPROVAL": "false", "MLOPS_SERVING_WORKERS": "1"}
    with (
        start_server(trained_platform.settings, POLICY, log_path=log, env=env) as url,
        httpx.Client(base_url=url, timeout=10) as client,
    ):
        yield client, log


def _app(platform, i):
    row = platform.training_set.iloc[i]
    return {
        "customer_id": int(row["customer_id"]),
        "loan_amount": float(row["loan_amount"]),
        "term_months": int(row["term_months"]),
        "application_id": int(row["application_id"]),
    }


def test_scores_a_known_customer(server, trained_platform):
    client, _ = server
    response = client.post("/predict", json=_app(trained_platform, 0))
    assert response.status_code == 200, response.text
    body = response.json()
    assert 0 <= body["score"] <= 1 and body["variant"] in {"champion", "twin"}


GOOD = {"customer_id": 1001, "loan_amount": 5000.0, "term_months": 36}


@pytest.mark.parametrize(
    "content, status, field",
    [
        ('{"customer_id": 1001, "loan_amount": 5', 400, "json_invalid"),
        (json.dumps({**GOOD, "customer_id": "1001"}), 400, "customer_id"),
        (json.dumps({**GOOD, "customer_id": -3}), 400, "customer_id"),
        (json.dumps({k: v for k, v in GOOD.items() if k != "term_months"}), 400, "term_months"),
        (json.dumps({**GOOD, "term_months": 37}), 400, "term_months"),
        ('{"customer_id": 1001, "loan_amount": NaN, "term_months": 36}', 400, "loan_amount"),
        ('{"customer_id": 1001, "loan_amount": 1e999, "term_months": 36}', 400, "loan_amount"),
        (json.dumps({**GOOD, "colour": "red"}), 400, "colour"),
        (json.dumps({**GOOD, "customer_id": 2**70}), 400, "customer_id"),
        (json.dumps({**GOOD, "customer_id": 987654321}), 404, "customer_id"),
    ],
)
def test_bad_input_is_4xx_naming_the_field(server, content, status, field):
    client, _ = server
    response = client.post(
        "/predict", content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert field in response.text


def test_oversized_batch_is_rejected_naming_requests(server, trained_platform):
    client, _ = server
    response = client.post("/predict_batch", json={"requests": [GOOD] * (MAX_BATCH + 1)})
    assert response.status_code == 400 and "requests" in response.text
    batch = [_app(trained_platform, i) for i in range(5)]
    assert len(client.post("/predict_batch", json={"requests": batch}).json()["predictions"]) == 5


def test_openapi_describes_the_request_exactly(server):
    client, _ = server
    spec = client.get("/docs.json").json()
    text = json.dumps(spec).replace(" ", "")
    for expected in ('"enum":[12,24,36,48,60]', '"maxItems":256', '"additionalProperties":false'):
        assert expected in text, expected
    customer_id = spec["components"]["schemas"]["ScoreRequest"]["properties"]["customer_id"]
    assert customer_id["minimum"] == 0 and customer_id["exclusiveMinimum"] is True


def test_openapi_document_is_valid_openapi_30(server):
    client, _ = server
    validate(client.get("/docs.json").json(), cls=OpenAPIV30SpecValidator)


CONTRACT_ROUTES = ("/predict", "/predict_batch")


@pytest.fixture(scope="module")
def contract(server, trained_platform):
    """The served document as schemathesis reads it, and customer ids the store knows."""
    client, _ = server
    schema = schemathesis.openapi.from_dict(client.get("/docs.json").json())
    known = trained_platform.training_set["customer_id"].astype(int).unique().tolist()
    return schema, str(client.base_url), known


def _with_known_customers(body: dict, known: list[int], rng) -> dict:
    """The generated body with most customer ids swapped for ones the feature store knows."""
    if "requests" in body:
        return {
            **body,
            "requests": [_with_known_customers(r, known, rng) for r in body["requests"]],
        }
    if rng.random() < 0.95:  # the rest keep their generated id: mostly unknown, a 404
        return {**body, "customer_id": rng.choice(known)}
    return body


@pytest.mark.parametrize("route", CONTRACT_ROUTES)
@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_documented_request_is_answered_as_documented(contract, route, mode):
    """Requests generated from /docs.json: valid ones accepted, every answer as documented."""
    schema, base_url, known = contract
    operation = schema[route]["POST"]
    generation = GenerationMode.POSITIVE if mode == "positive" else GenerationMode.NEGATIVE

    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data):
        case = data.draw(operation.as_strategy(generation_mode=generation))
        if mode == "positive":  # mostly known customers, so that 200s are exercised too
            case.body = _with_known_customers(case.body, known, data.draw(st.randoms()))
        response = case.call_and_validate(base_url=base_url)
        if mode == "positive":
            assert response.status_code in (200, 404), (case.body, response.text)

    check()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=8,
)
payloads = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "customer_id": st.one_of(st.integers(-(2**65), 2**65), json_values),
            "loan_amount": st.one_of(st.floats(), json_values),
            "term_months": st.one_of(st.sampled_from([12, 24, 36, 48, 60, 0, 13]), json_values),
            "application_id": st.one_of(st.integers(-5, 2**64), json_values),
        },
    ),
    json_values,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=payloads, raw=st.binary(max_size=40), use_raw=st.booleans())
def test_fuzzed_payloads_never_5xx(server, payload, raw, use_raw):
    client, _ = server
    content = raw if use_raw else json.dumps(payload, allow_nan=True).encode()
    for route in ("/predict", "/predict_batch"):
        response = client.post(
            route, content=content, headers={"content-type": "application/json"}
        )
        assert response.status_code < 500, (route, content, response.text)


def test_experiment_report_from_the_servers_log(server, trained_platform, tmp_path):
    client, log = server
    frame = trained_platform.training_set
    for start in range(0, 600, 100):
        batch = [_app(trained_platform, i) for i in range(start, start + 100)]
        assert client.post("/predict_batch", json={"requests": batch}).status_code == 200
    labels = frame[["application_id", "defaulted"]]
    deadline = __import__("time").monotonic() + 10
    while __import__("time").monotonic() < deadline:  # the log and shadows flush in background
        logged = read_prediction_log(log)
        if logged["shadow"].sum() >= 600:
            break
    report = analyze_experiment(log, labels, tmp_path)
    assert {a.variant for a in report.arms} == {"champion", "twin"}
    assert report.comparisons[0].variant == "twin" and report.comparisons[0].p_value > 0.001
    assert report.shadows and report.shadows[0].difference == pytest.approx(0, abs=0.02)
    assert (tmp_path / "experiment.png").stat().st_size > 0
    assert "Experiment report" in (tmp_path / "experiment.md").read_text()
