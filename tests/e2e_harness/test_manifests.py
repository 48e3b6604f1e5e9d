"""Pure manifest -> podman translation: selectors, env, security flags, command/args."""

from __future__ import annotations

import json

import pytest

from e2e.manifests import (
    ManifestError,
    check_service_ports,
    command_args,
    env_args,
    security_args,
    selector_matches,
    service_aliases,
)

LABELS = {"app": "serving", "tier": "api"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"app": "serving"}, True),  # a Service selector is a plain map
        ({"app": "mlflow"}, False),
        ({"matchLabels": {"app": "serving", "tier": "api"}}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["api"]}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["api"]}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "DoesNotExist"}]}, True),
        ({}, False),  # an empty selector selects nothing here
    ],
)
def test_selector_matches(selector: dict, expected: bool) -> None:
    assert selector_matches(selector, LABELS) is expected


def test_service_aliases_cover_cluster_dns() -> None:
    assert service_aliases("serving", "mlops")[-1] == "serving.mlops.svc.cluster.local"


CONTAINER = {
    "name": "app",
    "ports": [{"name": "http", "containerPort": 3000}],
    "env": [
        {"name": "PLAIN", "value": "1"},
        {"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "url"}}},
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ],
}


def test_env_args_resolve_every_source() -> None:
    args = env_args(
        CONTAINER, "serving-0", "mlops", {"db": {"url": "pg://x"}}, {"cfg": {"mode": "m"}}
    )
    pairs = dict(a.split("=", 1) for a in args[1::2])
    assert pairs == {"PLAIN": "1", "DB": "pg://x", "MODE": "m", "POD": "serving-0"}


@pytest.mark.parametrize(
    ("secrets", "configmaps"), [({}, {"cfg": {"mode": "m"}}), ({"db": {}}, {"cfg": {"mode": "m"}})]
)
def test_env_args_fail_on_missing_reference(secrets: dict, configmaps: dict) -> None:
    with pytest.raises(ManifestError, match="db"):
        env_args(CONTAINER, "p", "mlops", secrets, configmaps)


def test_security_args_follow_the_context() -> None:
    pod = {"securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "runAsNonRoot": True}}
    container = {
        "name": "app",
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"limits": {"memory": "512Mi", "cpu": "500m"}},
    }
    args = security_args(pod, container)
    assert args == [
        "--user", "10001:10001", "--read-only", "--cap-drop=all",
        "--security-opt", "no-new-privileges",
        "--memory", str(512 * 2**20), "--cpus", "0.5",
    ]  # fmt: skip


def test_run_as_non_root_refuses_uid_zero() -> None:
    with pytest.raises(ManifestError, match="runAsNonRoot"):
        security_args({"securityContext": {"runAsNonRoot": True, "runAsUser": 0}}, {"name": "a"})


@pytest.mark.parametrize(
    ("container", "flags", "tail"),
    [
        (
            {"command": ["mlops", "serve"], "args": ["--port=1"]},
            ["--entrypoint", '["mlops", "serve"]'],
            ["--port=1"],
        ),
        ({"args": ["--port=1"]}, [], ["--port=1"]),
        ({}, [], []),
    ],
)
def test_command_replaces_entrypoint_args_replace_cmd(
    container: dict, flags: list, tail: list
) -> None:
    assert command_args(container) == (flags, tail)
    if flags:
        assert json.loads(flags[1]) == container["command"]


@pytest.mark.parametrize(("target", "ok"), [("http", True), (3000, True), (8080, False)])
def test_service_port_must_equal_target(target: object, ok: bool) -> None:
    service = {
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 3000, "targetPort": target}]},
    }
    if ok:
        check_service_ports(service, {"containers": [CONTAINER]})
    else:
        with pytest.raises(ManifestError, match="remap"):
            check_service_ports(service, {"containers": [CONTAINER]})
