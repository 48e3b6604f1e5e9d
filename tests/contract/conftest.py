"""Render each stack once per session for the contract tests (manifests vs. the code).

The stack is the real Pulumi program under mocks (``infra.render``), as in ``tests/infra``.
Tests walk every container of a stack and collect every violation into one failure message
(``rendered_pods.no_problems``), each line naming ``stack:Kind/name[container]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rendered_pods import Container, containers

STACKS = ("local", "aws-dev", "aws-prod")


@dataclass(frozen=True)
class Stack:
    name: str
    objects: list[dict]
    config: dict[str, str]
    containers: list[Container] = field(default_factory=list)

    def kinds(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]


_CACHE: dict[str, Stack | Exception] = {}


def rendered(name: str, root: Path) -> Stack:
    """The rendered stack; a render that fails fails once, then every test reports that error."""
    from infra.render import kubernetes_objects, render, stack_config

    if name not in _CACHE:
        try:
            objects = kubernetes_objects(render(name, root / name))
            config = stack_config(name)
            _CACHE[name] = Stack(name, objects, config, containers(name, objects, config))
        except Exception as error:  # re-raised below, for every test of the stack
            _CACHE[name] = error
    found = _CACHE[name]
    if isinstance(found, Exception):
        raise found
    return found


@pytest.fixture(scope="session")
def contract_render_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("contract-render")


@pytest.fixture(scope="session", params=STACKS)
def stack(request: pytest.FixtureRequest, contract_render_root: Path) -> Stack:
    """One rendered stack (each of the three, once per session)."""
    return rendered(request.param, contract_render_root)


@pytest.fixture(scope="session")
def local_stack(contract_render_root: Path) -> Stack:
    return rendered("local", contract_render_root)
