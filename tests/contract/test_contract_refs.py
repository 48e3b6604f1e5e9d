"""What pods reference exists in the render, and the configuration code reads validates.

* every secretKeyRef/configMapKeyRef, envFrom source and ConfigMap/Secret volume (and its
  ``items`` keys) names an object of the render, in the pod's namespace, holding that key;
* the traffic policy a serving container is pointed at (``MLOPS_TRAFFIC_POLICY`` -> volume mount
  -> ConfigMap key, found by reference, not by name) validates with
  ``contract.traffic.TrafficPolicy`` and reaches the pod without ``subPath`` (Kubernetes never
  updates a subPath file, so a policy change would never reach running pods).
"""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError
from rendered_pods import (
    Container,
    MountedFile,
    by_name,
    data_keys,
    data_value,
    mounted_file,
    no_problems,
)

from contract import env, paths
from contract.traffic import TrafficPolicy


def _ref(objects: list[dict], c: Container, kind: str, name: str, key: str | None) -> str | None:
    """Why ``kind/name[key]`` cannot be found from container ``c``, or None."""
    obj = by_name(objects, kind, c.namespace, name)
    if obj is None:
        return f"{kind} {name!r} is not in the render (namespace {c.namespace})"
    if key is not None and key not in data_keys(obj):
        return f"{kind} {name!r} has no key {key!r} (has {sorted(data_keys(obj))})"
    return None


def _env_refs(c: Container) -> list[tuple[str, str, str | None, bool]]:
    """(kind, name, key, optional) of every ConfigMap/Secret the container's env reads."""
    refs = []
    for entry in c.spec.get("env", []):
        source = entry.get("valueFrom") or {}
        for field, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
            if field in source:
                ref = source[field]
                refs.append((kind, ref["name"], ref["key"], ref.get("optional", False)))
    for entry in c.spec.get("envFrom", []):
        for field, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
            if field in entry:
                ref = entry[field]
                refs.append((kind, ref["name"], None, ref.get("optional", False)))
    return refs


def _volume_refs(c: Container) -> list[tuple[str, str, str | None, bool]]:
    """(kind, name, key, optional) of every ConfigMap/Secret volume (or projection) of the pod."""
    sources = []
    for volume in c.pod.get("volumes", []):
        sources += [("configMap", volume.get("configMap")), ("secret", volume.get("secret"))]
        for projected in (volume.get("projected") or {}).get("sources", []):
            sources += [("configMap", projected.get("configMap"))]
            sources += [("secret", projected.get("secret"))]
    refs = []
    for field, source in sources:
        if source is None:
            continue
        kind = "ConfigMap" if field == "configMap" else "Secret"
        name, optional = source.get("name") or source.get("secretName"), source.get("optional")
        keys = [i["key"] for i in source.get("items", [])] or [None]
        refs += [(kind, name, key, bool(optional)) for key in keys]
    return refs


def dangling(objects: list[dict], c: Container) -> list[str]:
    """Every reference of ``c`` that the render does not satisfy."""
    return [
        f"{c.where}: {reason}"
        for kind, name, key, optional in {*_env_refs(c), *_volume_refs(c)}
        if not optional and (reason := _ref(objects, c, kind, name, key))
    ]


def policy_problems(objects: list[dict], c: Container) -> list[str]:
    """Why the traffic policy file of a container pointed at one is not a valid, live policy."""
    entry = c.env.get(env.TRAFFIC_POLICY)
    if entry is None:
        return []
    if "value" not in entry:
        return [f"{c.where}: {env.TRAFFIC_POLICY} is not a literal path"]
    where = mounted_file(c, entry["value"])
    if not isinstance(where, MountedFile):
        return [f"{c.where}: {env.TRAFFIC_POLICY}={entry['value']}: {where}"]
    problems = [f"{c.where}: policy mounted with subPath (never updated)"] * where.sub_path
    obj = by_name(objects, where.kind, c.namespace, where.name)
    text = data_value(obj, where.key) if obj else None
    if text is None:
        return [*problems, f"{c.where}: {where.kind} {where.name!r} has no key {where.key!r}"]
    try:
        TrafficPolicy.model_validate(yaml.safe_load(text))
    except ValidationError as error:
        said = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        problems.append(
            f"{c.where}: {where.kind} {where.name}[{where.key}] is no TrafficPolicy: {said}"
        )
    return problems


def _pod(volumes: list, mounts: list, env_: list) -> Container:
    owner = {"kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}}
    spec = {"name": "c", "env": env_, "volumeMounts": mounts}
    pod = {"volumes": volumes, "containers": [spec]}
    return Container("t", owner, spec, pod, image_process=None)


_POLICY = '{"salt": "s", "variants": {"a": {"model": "champion", "weight": 1.0}}}'


@pytest.mark.parametrize(
    ("mount", "data", "bad"),
    [
        ({"mountPath": "/p"}, {"f.json": _POLICY}, False),
        ({"mountPath": "/p"}, {"f.json": "{}"}, True),  # not a TrafficPolicy
        ({"mountPath": "/p"}, {"other.json": _POLICY}, True),
        ({"mountPath": "/p", "subPath": "f.json"}, {"f.json": _POLICY}, True),
        ({"mountPath": "/p", "subPath": "f.json"}, {"f.json": "{}"}, True),
        ({"mountPath": "/elsewhere"}, {"f.json": "{}"}, True),
    ],
)
def test_policy_problems_are_found(mount: dict, data: dict, bad: bool) -> None:
    mount = {"name": "v", **mount}
    if "subPath" in mount:
        mount["mountPath"] = "/p/f.json"
    c = _pod(
        [{"name": "v", "configMap": {"name": "cm"}}],
        [mount],
        [{"name": env.TRAFFIC_POLICY, "value": "/p/f.json"}],
    )
    cm = {"kind": "ConfigMap", "metadata": {"name": "cm", "namespace": "ns"}, "data": data}
    assert bool(policy_problems([cm], c)) is bad


@pytest.mark.parametrize(
    ("ref", "objects_keys", "bad"),
    [
        ({"secretKeyRef": {"name": "s", "key": "k"}}, {"k"}, False),
        ({"secretKeyRef": {"name": "s", "key": "k"}}, {"other"}, True),
        ({"secretKeyRef": {"name": "missing", "key": "k"}}, {"k"}, True),
        ({"secretKeyRef": {"name": "missing", "key": "k", "optional": True}}, set(), False),
    ],
)
def test_dangling_references_are_found(ref: dict, objects_keys: set, bad: bool) -> None:
    c = _pod([], [], [{"name": "X", "valueFrom": ref}])
    secret = {"kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}}
    secret["stringData"] = dict.fromkeys(objects_keys, "v")
    assert bool(dangling([secret], c)) is bad


def test_no_dangling_secret_or_configmap_reference(stack) -> None:
    no_problems([p for c in stack.containers for p in dangling(stack.objects, c)])


def test_traffic_policy_validates_with_the_servers_model(stack) -> None:
    pointed = [c for c in stack.containers if env.TRAFFIC_POLICY in c.env]
    assert pointed, f"{stack.name}: no container is given {env.TRAFFIC_POLICY}"
    no_problems([p for c in pointed for p in policy_problems(stack.objects, c)])


# Folders the components mount configuration at (contract.paths); an env var pointing into one
# names a file that must come from a mounted ConfigMap/Secret key of the render.
CONFIG_DIRS = (paths.FEAST_CONFIG_DIR, paths.POLICY_DIR, paths.MLFLOW_AUTH_DIR)


def config_file_problems(objects: list[dict], c: Container) -> list[str]:
    """Env vars naming a file in a configuration folder that no mounted key provides."""
    problems = []
    for name, entry in c.env.items():
        value = entry.get("value", "")
        if not any(value.startswith(f"{d}/") for d in CONFIG_DIRS):
            continue
        where = mounted_file(c, value)
        if not isinstance(where, MountedFile):
            problems.append(f"{c.where}: {name}={value}: {where}")
        elif reason := _ref(objects, c, where.kind, where.name, where.key):
            problems.append(f"{c.where}: {name}={value}: {reason}")
    return problems


def test_config_files_named_by_env_are_mounted(stack) -> None:
    no_problems([p for c in stack.containers for p in config_file_problems(stack.objects, c)])


@pytest.mark.parametrize(
    ("mounts", "keys", "bad"),
    [
        ([{"name": "v", "mountPath": paths.FEAST_CONFIG_DIR}], {paths.FEAST_YAML_FILE}, False),
        ([{"name": "v", "mountPath": paths.FEAST_CONFIG_DIR}], {"other.yaml"}, True),
        ([], {paths.FEAST_YAML_FILE}, True),
    ],
)
def test_config_file_problems_are_found(mounts: list, keys: set, bad: bool) -> None:
    c = _pod(
        [{"name": "v", "secret": {"secretName": "s"}}],
        mounts,
        [{"name": env.FEAST_YAML, "value": paths.FEAST_YAML_PATH}],
    )
    secret = {"kind": "Secret", "metadata": {"name": "s", "namespace": "ns"}}
    assert bool(config_file_problems([{**secret, "stringData": dict.fromkeys(keys)}], c)) is bad
