"""The rendered data path: ingest, materialize, train and retrain run the contract's commands.

Intent, not a snapshot: each step is the workload the loop expects, with what it needs to find
the offline store, and no pipeline pod can reach the Kubernetes API.
"""

from __future__ import annotations

import pytest

from contract import commands, env, paths
from tests.infra.conftest import pod_spec

STEPS = {
    ("CronJob", "feast-ingest"): commands.INGEST,
    ("CronJob", "feast-materialize"): commands.MATERIALIZE,
    ("Job", "pipeline-train"): commands.TRAIN,
    ("CronJob", "pipeline-retrain"): commands.RETRAIN,
}


def _workload(rendered, kind: str, name: str) -> dict:
    (obj,) = [o for o in rendered.kinds(kind) if o["metadata"]["name"] == name]
    return obj


@pytest.mark.parametrize(("kind", "name"), list(STEPS))
def test_each_step_runs_its_contract_command(rendered, kind, name):
    pod = pod_spec(_workload(rendered, kind, name))
    (container,) = pod["containers"]
    assert [*container["command"], *container.get("args", [])] == list(STEPS[kind, name])
    assert pod["automountServiceAccountToken"] is False
    names = {e["name"] for e in container["env"]}
    assert env.bucket("features") in names  # the offline store is in the object store


@pytest.mark.parametrize("name", ["feast-materialize", "pipeline-train", "pipeline-retrain"])
def test_feast_steps_get_the_repo_and_a_directory_mount(rendered, name):
    kind = "Job" if name == "pipeline-train" else "CronJob"
    (container,) = pod_spec(_workload(rendered, kind, name))["containers"]
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values[env.FEATURE_REPO] == paths.FEATURE_REPO_DIR
    assert values[env.FEAST_YAML] == paths.FEAST_YAML_PATH
    assert env.PUSHGATEWAY_URL in values
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "feast-config"]
    assert mount["mountPath"] == paths.FEAST_CONFIG_DIR and "subPath" not in mount


def test_no_job_template_and_no_role_for_retraining(rendered):
    assert not [m for m in rendered.kinds("ConfigMap") if "job-template" in m["metadata"]["name"]]
    assert not rendered.kinds("Role") and not rendered.kinds("RoleBinding")
