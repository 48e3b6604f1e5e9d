"""Render each stack once per test session (the real program under Pulumi mocks)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

STACKS = ("local", "aws-dev", "aws-prod")


@dataclass(frozen=True)
class Rendered:
    stack: str
    out: Path
    resources: list  # infra.render.Resource
    objects: list[dict]  # Kubernetes objects, as written to manifests/

    def of_type(self, token: str) -> list:
        return [r for r in self.resources if r.type == token]

    def kinds(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]


_CACHE: dict[str, Rendered] = {}


def rendered_stack(stack: str, tmp_root: Path) -> Rendered:
    from infra.render import kubernetes_objects, render

    if stack not in _CACHE:
        out = tmp_root / stack
        resources = render(stack, out)
        _CACHE[stack] = Rendered(stack, out, resources, kubernetes_objects(resources))
    return _CACHE[stack]


@pytest.fixture(scope="session")
def render_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("infra-render")


@pytest.fixture(scope="session", params=STACKS)
def rendered(request: pytest.FixtureRequest, render_root: Path) -> Rendered:
    return rendered_stack(request.param, render_root)


@pytest.fixture(scope="session")
def local(render_root: Path) -> Rendered:
    return rendered_stack("local", render_root)


@pytest.fixture(scope="session")
def aws_dev(render_root: Path) -> Rendered:
    return rendered_stack("aws-dev", render_root)


@pytest.fixture(scope="session")
def aws_prod(render_root: Path) -> Rendered:
    return rendered_stack("aws-prod", render_root)


def pod_spec(obj: dict) -> dict:
    """The pod spec of a Deployment, Job or CronJob."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


WORKLOAD_KINDS = ("Deployment", "Job", "CronJob")


def workloads(r: Rendered) -> list[dict]:
    """Every first-party pod-bearing object, including the retrain Job template in its ConfigMap.

    Third-party software arrives only through Helm releases, so every pod-bearing manifest
    the program renders is first party.
    """
    import json

    found = [o for o in r.objects if o["kind"] in WORKLOAD_KINDS]
    for cm in r.kinds("ConfigMap"):
        if "job.json" in cm.get("data", {}):
            found.append(json.loads(cm["data"]["job.json"]))
    return found


def all_workloads() -> list[tuple[str, dict]]:
    """(stack, object) for every workload of every stack; renders at collection time."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="infra-render-"))
    return [(s, o) for s in STACKS for o in workloads(rendered_stack(s, root))]


def workload_id(stack: str, obj: dict) -> str:
    meta = obj["metadata"]
    return f"{stack}:{obj['kind']}/{meta.get('name') or meta.get('generateName')}"
