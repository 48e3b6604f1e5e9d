"""The drift monitor closes the loop through the object store, never through the Kubernetes API.

On drift it writes ``triggers/retrain.json`` to the reports bucket; the retrain CronJob consumes
it. So its pod needs no API token, no Job template and no file-path windows; and the governance
Job runs the contract's publish command.
"""

from __future__ import annotations

import pytest

from contract import env
from contract.commands import DRIFT, PUBLISH_SITE

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from conftest import pod_spec
except ImportError:  # pragma: no cover
    from tests.infra.conftest import pod_spec


def _workload(rendered, kind: str, component: str) -> dict:
    (obj,) = [
        o
        for o in rendered.kinds(kind)
        if o["metadata"]["labels"].get("app.kubernetes.io/component") == component
    ]
    return obj


@pytest.mark.parametrize(("kind", "component", "command"), [
    ("CronJob", "drift", DRIFT),
    ("Job", "docs", PUBLISH_SITE),
])  # fmt: skip
def test_commands_come_from_the_contract(local, kind, component, command):
    (container,) = pod_spec(_workload(local, kind, component))["containers"]
    assert [*container["command"], *container.get("args", [])] == list(command)


def test_drift_monitor_needs_no_kubernetes_api(local):
    pod = pod_spec(_workload(local, "CronJob", "drift"))
    (container,) = pod["containers"]
    names = {e["name"] for e in container["env"]}
    assert pod.get("automountServiceAccountToken") is False
    assert not names & {"MLOPS_RETRAIN_JOB_TEMPLATE", "MLOPS_NAMESPACE", "MLOPS_DRIFT_REFERENCE"}
    assert env.bucket("reports") in names
    assert not any("retrain" in v["name"] for v in pod.get("volumes", []))
