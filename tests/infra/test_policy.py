"""Security policy of everything first-party (issue 3, item 4), one check per workload."""

from __future__ import annotations

import json
import re

import pytest

from infra.render import SECRET
from tests.infra.conftest import all_workloads, pod_spec, workload_id

WORKLOADS = all_workloads()
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
# Only the drift monitor calls the Kubernetes API (to create retrain Jobs).
API_CLIENTS: set[str] = set()  # no first-party pod calls the Kubernetes API


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for name, kinds in (("workload", None), ("deployment", {"Deployment"})):
        if name in metafunc.fixturenames:
            chosen = [(s, o) for s, o in WORKLOADS if kinds is None or o["kind"] in kinds]
            metafunc.parametrize(
                name, [o for _, o in chosen], ids=[workload_id(s, o) for s, o in chosen]
            )


def _containers(workload: dict) -> list[dict]:
    spec = pod_spec(workload)
    return spec["containers"] + spec.get("initContainers", [])


def test_pod_is_restricted(workload) -> None:
    spec = pod_spec(workload)
    pod = spec["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0
    assert pod["seccompProfile"]["type"] == "RuntimeDefault"
    assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
    assert all("hostPath" not in v for v in spec.get("volumes", []))
    name = workload["metadata"].get("name")
    assert spec["automountServiceAccountToken"] is (name in API_CLIENTS)
    assert spec["serviceAccountName"] != "default"


def test_containers_are_restricted(workload) -> None:
    for c in _containers(workload):
        ctx = c["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["capabilities"]["drop"] == ["ALL"] and not ctx["capabilities"].get("add")
        assert ctx["runAsNonRoot"] is True and not ctx.get("privileged")
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert "/tmp" in mounts, "read-only root needs a writable /tmp"


def test_containers_have_requests_and_limits(workload) -> None:
    for c in _containers(workload):
        for bound in ("requests", "limits"):
            assert set(c["resources"][bound]) == {"cpu", "memory"}, (c["name"], bound)


def test_long_running_containers_have_probes(deployment) -> None:
    """Batch pods (Jobs, CronJobs) are exempt: their exit code is their health signal."""
    for c in _containers(deployment):
        assert c.get("livenessProbe") and c.get("readinessProbe"), c["name"]


def test_images_are_pinned_by_digest(workload) -> None:
    for c in _containers(workload):
        assert DIGEST.search(c["image"]), c["image"]
        assert ":latest" not in c["image"]


def test_env_never_holds_secret_values(workload) -> None:
    for c in _containers(workload):
        for var in c.get("env", []):
            assert var.get("value") != SECRET, f"{c['name']}: {var['name']} is a literal secret"
            if re.search(r"PASSWORD|SECRET|TOKEN|DATABASE_URL|REDIS_URL", var["name"]):
                assert "secretKeyRef" in var.get("valueFrom", {}), var["name"]


def test_config_maps_hold_no_secrets(rendered) -> None:
    for cm in rendered.kinds("ConfigMap"):
        text = json.dumps(cm.get("data", {}))
        assert SECRET not in text, cm["metadata"]["name"]
        assert not re.search(r"://[^/\s:]+:[^@\s/]+@", text), "credentials in a URL"


def test_first_party_namespace_is_restricted_and_default_deny(rendered) -> None:
    namespaces = {ns["metadata"]["name"]: ns for ns in rendered.kinds("Namespace")}
    pods_in = {
        o["metadata"]["namespace"]
        for o in rendered.objects
        if o["kind"] in ("Deployment", "Job", "CronJob")
    }
    for name in pods_in:
        labels = namespaces[name]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted", name
    for name in namespaces:
        denies = [
            p
            for p in rendered.kinds("NetworkPolicy")
            if p["metadata"]["namespace"] == name
            and p["spec"]["podSelector"] == {}
            and "Ingress" in p["spec"]["policyTypes"]
            and not p["spec"].get("ingress")
        ]
        if name == "cnpg-system":
            continue  # the operator's own namespace: chart-managed, holds no data
        assert denies, f"namespace {name} has no default-deny NetworkPolicy"


def test_every_service_is_reachable_and_scraped(rendered) -> None:
    """Default deny means each Service needs an ingress allow; each is also monitored."""
    policies = [p for p in rendered.kinds("NetworkPolicy") if p["spec"].get("ingress")]
    monitors = rendered.kinds("ServiceMonitor")
    for svc in rendered.kinds("Service"):
        selector = svc["spec"]["selector"]
        allowed = [
            p
            for p in policies
            if p["metadata"]["namespace"] == svc["metadata"]["namespace"]
            and _matches(p["spec"]["podSelector"].get("matchLabels", {}), selector)
        ]
        assert allowed, f"no ingress allow for Service {svc['metadata']['name']}"
        labels = svc["metadata"]["labels"]
        assert any(_matches(m["spec"]["selector"]["matchLabels"], labels) for m in monitors), (
            f"Service {svc['metadata']['name']} is not scraped"
        )


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_no_first_party_rbac(rendered) -> None:
    """Least privilege: no first-party pod talks to the Kubernetes API, so no Role exists."""
    for kind in ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"):
        assert not rendered.kinds(kind), f"unexpected {kind}"
