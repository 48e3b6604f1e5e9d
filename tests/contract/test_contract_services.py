"""Every Service selects at least one rendered pod template, on a port its containers expose.

A Service whose selector matches nothing has no endpoints: its clients get connection errors and
no manifest validator notices. Pods of third-party Helm releases are not in the render, so only
Services the program renders itself are checked (they front first-party pods).
"""

from __future__ import annotations

import pytest
from rendered_pods import no_problems, pod_template, workloads


def selected(service: dict, objects: list[dict]) -> list[dict]:
    """Pod templates (of the Service's namespace) whose labels include its whole selector."""
    selector = service.get("spec", {}).get("selector") or {}
    namespace = service["metadata"].get("namespace")
    return [
        pod_template(o)
        for o in workloads(objects)
        if o["metadata"].get("namespace") == namespace
        and selector
        and selector.items() <= (pod_template(o)["metadata"].get("labels") or {}).items()
    ]


def port_problems(service: dict, pods: list[dict]) -> list[str]:
    """Service ports whose targetPort is no (named or numbered) port of a selected container."""
    ports = [p for pod in pods for c in pod["spec"]["containers"] for p in c.get("ports", [])]
    names = {p.get("name") for p in ports}
    numbers = {p["containerPort"] for p in ports}
    problems = []
    for port in service["spec"].get("ports", []):
        target = port.get("targetPort", port["port"])
        if target not in (names if isinstance(target, str) else numbers):
            problems.append(f"port {port.get('name', port['port'])}: targetPort {target!r}")
    return problems


def service_problems(service: dict, objects: list[dict]) -> list[str]:
    where = f"Service/{service['metadata']['name']}"
    if service["spec"].get("type") == "ExternalName":
        return []
    pods = selected(service, objects)
    if not pods:
        selector = service["spec"].get("selector")
        return [f"{where}: selector {selector} matches no rendered pod template"]
    return [
        f"{where}: {p} names no port of a selected container" for p in port_problems(service, pods)
    ]


def _objects(labels: dict, port: str) -> list[dict]:
    pod = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "c", "ports": [{"name": port, "containerPort": 80}]}]},
    }
    deployment = {"kind": "Deployment", "metadata": {"name": "d", "namespace": "n"}}
    return [{**deployment, "spec": {"template": pod}}]


@pytest.mark.parametrize(
    ("labels", "port", "target", "bad"),
    [
        ({"app": "a", "tier": "x"}, "http", "http", False),
        ({"app": "a", "tier": "x"}, "http", 80, False),
        ({"app": "b"}, "http", "http", True),  # selects nothing
        ({"app": "a"}, "web", "http", True),  # no such named port
        ({"app": "a"}, "http", 8080, True),
    ],
)
def test_service_problems_are_found(labels: dict, port: str, target, bad: bool) -> None:
    service = {
        "kind": "Service",
        "metadata": {"name": "s", "namespace": "n"},
        "spec": {"selector": {"app": "a"}, "ports": [{"port": 80, "targetPort": target}]},
    }
    assert bool(service_problems(service, _objects(labels, port))) is bad


def test_every_service_selects_a_pod_and_port(stack) -> None:
    services = stack.kinds("Service")
    assert services, f"{stack.name}: the render has no Service"
    no_problems(
        [f"{stack.name}:{p}" for s in services for p in service_problems(s, stack.objects)]
    )
