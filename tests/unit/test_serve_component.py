"""The serving component's policy and pod environment agree with the data plane's code."""

import json

import pytest
from typer.testing import CliRunner

from components.model_serving import (
    POLICY_MOUNT,
    ModelServingArgs,
    Variant,
    serving_env,
    traffic_policy,
)
from components.types import Cluster, ObjectStore, Services
from contract import env, paths
from contract.traffic import TrafficPolicy
from ml.cli.main import app


def _args(variants, steps=(5, 25, 50, 100)):
    class _Backends:  # only the object store is read by the component
        object_store = ObjectStore(
            "http://s3:8333",
            "us-east-1",
            {"reports": "reports-b", "features": "f", "artifacts": "a"},
            {"serving": "serving-s3"},
        )

    services = Services("http://mlflow:5000", "mlflow-credentials", "feast-cfg", "http://pg")
    cluster = Cluster("mlops", "mlops", None, None, {})
    return ModelServingArgs(cluster, "img", variants, _Backends(), services, canary_steps=steps)


STACKS = {
    "champion only": [Variant("champion", 100)],
    "a/b + shadow": [
        Variant("champion", 90),
        Variant("challenger", 10),
        Variant("shadow", 0, True),
    ],
}


@pytest.mark.parametrize("variants", STACKS.values(), ids=STACKS.keys())
def test_rendered_policy_is_a_traffic_policy_that_check_policy_accepts(variants, tmp_path):
    policy = traffic_policy(_args(variants))
    text = policy.model_dump_json(exclude_none=True)
    assert TrafficPolicy.model_validate_json(text) == policy
    assert all(spec.model == name for name, spec in policy.variants.items())  # aliases
    file = tmp_path / paths.POLICY_FILE
    file.write_text(text)
    result = CliRunner().invoke(app, ["serve", "check-policy", str(file)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "steps, canary",
    [((5, 25, 50, 100), ("challenger", "champion", [5.0, 25.0, 50.0, 100.0])), ((), None)],
)
def test_canary_only_with_a_challenger_and_steps(steps, canary):
    policy = traffic_policy(_args(STACKS["a/b + shadow"], steps))
    got = policy.canary and (policy.canary.variant, policy.canary.baseline, policy.canary.steps)
    assert got == canary
    assert [s.name for s in policy.shadows] == ["shadow"]
    assert traffic_policy(_args(STACKS["champion only"])).canary is None


def test_pod_env_names_only_what_serving_reads():
    names = {e["name"] for e in serving_env(_args(STACKS["champion only"]))}
    assert {"MLOPS_VARIANT", "MLOPS_MODEL_ALIAS", "MLOPS_FEATURE_SERVER_URL"}.isdisjoint(names)
    must = {env.TRAFFIC_POLICY, env.MLFLOW_TRACKING_URI, env.FEAST_YAML, env.FEATURE_REPO}
    must |= {env.POD_NAME, env.bucket("reports"), env.AWS_SHARED_CREDENTIALS_FILE}
    must |= {env.AWS_ENDPOINT_URL_S3}
    assert must <= names
    by_name = {e["name"]: e for e in serving_env(_args(STACKS["champion only"]))}
    assert by_name[env.TRAFFIC_POLICY]["value"] == paths.POLICY_PATH
    assert by_name[env.POD_NAME]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"


def test_policy_is_mounted_as_a_directory():
    assert "subPath" not in POLICY_MOUNT and POLICY_MOUNT["mountPath"] == paths.POLICY_DIR
    assert json.dumps(paths.POLICY_PATH).startswith(json.dumps(paths.POLICY_DIR)[:-1])
