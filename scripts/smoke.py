"""Smoke test of a deployed stack: every first-party Service answers its health check.

    uv run python -m scripts.smoke --stack aws-dev [--timeout 600]

Which Services and which paths come from the stack's offline render: for each first-party
Service (label ``app.kubernetes.io/part-of`` of :func:`components.security.labels`), the
readiness probe of the Deployment it selects, on the Service port that reaches the probed
container port. Each is called through the Kubernetes API server's service proxy
(``kubectl get --raw /api/v1/namespaces/<ns>/services/<name>:<port>/proxy/<path>``) with the
stack's kubeconfig output, so nothing is port-forwarded or exposed. Services are retried until
all answer or the timeout passes (a rolling update may still be replacing pods).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from components.security import labels
from ml.errors import UserError
from scripts import workflow

PART_OF = "app.kubernetes.io/part-of"
FIRST_PARTY = labels("any", "any")[PART_OF]


@dataclass(frozen=True)
class Target:
    namespace: str
    service: str
    port: int
    path: str

    @property
    def proxy_path(self) -> str:
        path = self.path.lstrip("/")
        return (
            f"/api/v1/namespaces/{self.namespace}/services/{self.service}:{self.port}/proxy/{path}"
        )


def targets(objects: list[dict]) -> list[Target]:
    """The health check of every first-party Service in rendered Kubernetes ``objects``.

    Raises:
        UserError: a first-party Service selects no Deployment with an HTTP readiness probe
            (the smoke test could not tell whether it is healthy).
    """
    deployments = [o for o in objects if o["kind"] == "Deployment"]
    found = []
    for svc in objects:
        meta = svc.get("metadata", {})
        if svc["kind"] != "Service" or meta.get("labels", {}).get(PART_OF) != FIRST_PARTY:
            continue
        target = _probe_target(svc, deployments)
        if target is None:
            raise UserError(
                f"Service {meta['name']} selects no Deployment with an HTTP readiness probe",
                "give its pods an httpGet readinessProbe so the smoke test can check it",
            )
        found.append(target)
    return found


def _probe_target(svc: dict, deployments: list[dict]) -> Target | None:
    selector = svc["spec"].get("selector") or {}
    for dep in deployments:
        template = dep["spec"]["template"]
        pod_labels = template["metadata"].get("labels", {})
        if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
            continue
        for container in template["spec"]["containers"]:
            probe = (container.get("readinessProbe") or {}).get("httpGet")
            if not probe:
                continue
            port = _service_port(svc, container, probe["port"])
            if port is not None:
                meta = svc["metadata"]
                return Target(meta["namespace"], meta["name"], port, probe.get("path", "/"))
    return None


def _service_port(svc: dict, container: dict, probe_port: int | str) -> int | None:
    """The Service port whose targetPort reaches the container port the probe uses."""
    named = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    number = named.get(probe_port, probe_port)
    for port in svc["spec"].get("ports", []):
        target = port.get("targetPort", port["port"])
        if target in (probe_port, number) or named.get(target) == number:
            return int(port["port"])
    return None


Getter = Callable[[str], bool]  # proxy path -> healthy?


def check(
    found: list[Target],
    get: Getter,
    *,
    timeout_s: float,
    interval_s: float = 10.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    out: Callable[[str], None] = print,
) -> None:
    """Call every target until all are healthy.

    Raises:
        UserError: some Service was still unhealthy after ``timeout_s``.
    """
    deadline = clock() + timeout_s
    pending = list(found)
    while True:
        answered = [t for t in pending if get(t.proxy_path)]
        for t in answered:
            out(f"smoke: {t.namespace}/{t.service}:{t.port}{t.path} healthy")
        pending = [t for t in pending if t not in answered]
        if not pending:
            return
        if clock() >= deadline:
            names = ", ".join(f"{t.service}{t.path}" for t in pending)
            raise UserError(
                f"smoke test failed: not healthy after {timeout_s:.0f}s: {names}",
                "inspect with `kubectl -n <namespace> describe pods` and the pods' logs",
            )
        sleep(interval_s)


def kubectl_getter(kubeconfig: Path) -> Getter:
    """A :data:`Getter` through ``kubectl get --raw`` (the API server's service proxy)."""

    def get(path: str) -> bool:
        cmd = ["kubectl", "--kubeconfig", str(kubeconfig), "get", "--raw", path]
        return subprocess.run(cmd, capture_output=True, check=False, timeout=30).returncode == 0

    return get


def smoke(
    stack: workflow.StackLike, *, timeout_s: float, out: Callable[[str], None] = print
) -> None:
    """Smoke-test the deployed ``stack`` (its kubeconfig output, its offline render)."""
    from infra.render import kubernetes_objects, render

    found = targets(kubernetes_objects(render(stack.name)))
    kubeconfig = workflow.plain_outputs(stack, reveal=True).get("kubeconfig")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kubeconfig"
        if kubeconfig:
            path.write_text(str(kubeconfig))
            path.chmod(0o600)
        else:  # the local stack deploys to the current kubeconfig context
            path = Path(os.environ.get("KUBECONFIG", Path.home() / ".kube" / "config"))
        check(found, kubectl_getter(path), timeout_s=timeout_s, out=out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="local, aws-dev or aws-prod")
    parser.add_argument("--timeout", type=float, default=600, help="seconds (default 600)")
    args = parser.parse_args(argv)
    smoke(workflow.open_stack(args.stack), timeout_s=args.timeout)


if __name__ == "__main__":
    workflow.run_cli(main)
