"""Pure translation of rendered Kubernetes manifests into podman terms (no podman needed).

The runner (a tiny kubelet over podman, still to come) builds on these functions:

* :func:`load` reads ``<render>/manifests/*.yaml`` into ``{(namespace, kind, name): object}``;
* :func:`selector_matches` implements ``matchLabels``/``matchExpressions`` (and a plain map, as
  a Service selector is);
* :func:`service_aliases` gives the DNS names a Service makes a pod reachable by;
* :func:`container_argv` turns one container of a pod spec into ``podman run`` arguments with
  Kubernetes semantics (command replaces ENTRYPOINT, args replace CMD; env from values, Secrets,
  ConfigMaps and the downward API; security context; limits).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

Key = tuple[str, str, str]  # (namespace, kind, name); cluster-scoped objects use namespace ""


class ManifestError(ValueError):
    """A rendered object the e2e cannot run as written; the message names it and why."""


def load(render_dir: Path) -> dict[Key, dict]:
    """Every object under ``render_dir/manifests``, keyed by (namespace, kind, name)."""
    objects: dict[Key, dict] = {}
    for path in sorted((render_dir / "manifests").glob("*.yaml")):
        obj = yaml.safe_load(path.read_text())
        meta = obj["metadata"]
        objects[(meta.get("namespace", ""), obj["kind"], meta["name"])] = obj
    return objects


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics; a plain ``{k: v}`` map is a Service selector.

    An empty or missing selector matches nothing here (a Service without selector has no
    pods; a ServiceMonitor must say what it selects).
    """
    if not selector:
        return False
    if "matchLabels" not in selector and "matchExpressions" not in selector:
        selector = {"matchLabels": selector}
    wanted = selector.get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    return all(_expression(e, labels) for e in selector.get("matchExpressions") or [])


def _expression(expr: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = expr["key"], expr["operator"], expr.get("values") or []
    if op == "In":
        return labels.get(key) in values
    if op == "NotIn":
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ManifestError(f"unknown selector operator {op!r}")


def service_aliases(name: str, namespace: str) -> list[str]:
    """The names cluster DNS gives a Service (all become podman network aliases)."""
    return [
        name,
        f"{name}.{namespace}",
        f"{name}.{namespace}.svc",
        f"{name}.{namespace}.svc.cluster.local",
    ]


def pod_template(obj: Mapping[str, Any]) -> dict:
    """The pod template (metadata + spec) of a Deployment, Job or CronJob."""
    spec = obj["spec"]
    if obj["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]


def check_service_ports(service: Mapping[str, Any], pod_spec: Mapping[str, Any]) -> None:
    """Aliases cannot remap ports: each Service port must be the container port it targets."""
    ports = {
        p.get("name"): p["containerPort"]
        for c in pod_spec["containers"]
        for p in c.get("ports", [])
    }
    for port in service["spec"].get("ports", []):
        target = port.get("targetPort", port["port"])
        resolved = ports.get(target) if isinstance(target, str) else target
        if resolved != port["port"]:
            raise ManifestError(
                f"Service {service['metadata']['name']}: port {port['port']} targets {target!r} "
                f"(container port {resolved}); the e2e cannot remap ports with network aliases"
            )


def env_args(
    container: Mapping[str, Any],
    pod_name: str,
    namespace: str,
    secrets: Mapping[str, Mapping[str, str]],
    configmaps: Mapping[str, Mapping[str, str]],
) -> list[str]:
    """``--env NAME=VALUE`` pairs for the container's ``envFrom`` then ``env`` (env wins)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "secretRef" in source:
            values.update(_lookup(secrets, "Secret", source["secretRef"]["name"]))
        elif "configMapRef" in source:
            values.update(_lookup(configmaps, "ConfigMap", source["configMapRef"]["name"]))
    fields = {"metadata.name": pod_name, "metadata.namespace": namespace}
    for var in container.get("env") or []:
        if "value" in var:
            values[var["name"]] = str(var["value"])
            continue
        ref = var.get("valueFrom") or {}
        if "secretKeyRef" in ref:
            values[var["name"]] = _key(secrets, "Secret", ref["secretKeyRef"])
        elif "configMapKeyRef" in ref:
            values[var["name"]] = _key(configmaps, "ConfigMap", ref["configMapKeyRef"])
        elif "fieldRef" in ref:
            path = ref["fieldRef"]["fieldPath"]
            if path not in fields:
                raise ManifestError(f"env {var['name']}: fieldRef {path} is not emulated")
            values[var["name"]] = fields[path]
        else:
            raise ManifestError(f"env {var['name']}: unsupported valueFrom {sorted(ref)}")
    return [arg for name, value in values.items() for arg in ("--env", f"{name}={value}")]


def _lookup(store: Mapping[str, Mapping[str, str]], kind: str, name: str) -> Mapping[str, str]:
    if name not in store:
        raise ManifestError(f"{kind} {name!r} is referenced but not rendered")
    return store[name]


def _key(store: Mapping[str, Mapping[str, str]], kind: str, ref: Mapping[str, Any]) -> str:
    data = _lookup(store, kind, ref["name"])
    if ref["key"] not in data:
        raise ManifestError(f"{kind} {ref['name']!r} has no key {ref['key']!r}")
    return data[ref["key"]]


def security_args(pod_spec: Mapping[str, Any], container: Mapping[str, Any]) -> list[str]:
    """``podman run`` flags for the pod + container securityContext and the limits."""
    ctx = {**(pod_spec.get("securityContext") or {}), **(container.get("securityContext") or {})}
    args: list[str] = []
    uid = ctx.get("runAsUser")
    if ctx.get("runAsNonRoot") and (uid is None or int(uid) == 0):
        raise ManifestError(f"container {container['name']}: runAsNonRoot but runAsUser={uid}")
    if uid is not None:
        args += ["--user", f"{uid}:{ctx.get('runAsGroup', uid)}"]
    if ctx.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    caps = ctx.get("capabilities") or {}
    args += [f"--cap-drop={c.lower()}" for c in caps.get("drop") or []]
    args += [f"--cap-add={c.lower()}" for c in caps.get("add") or []]
    if ctx.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    limits = (container.get("resources") or {}).get("limits") or {}
    if "memory" in limits:
        args += ["--memory", _memory(str(limits["memory"]))]
    if "cpu" in limits:
        args += ["--cpus", _cpus(str(limits["cpu"]))]
    return args


def _memory(quantity: str) -> str:
    """Kubernetes memory quantity -> podman's (bytes; binary suffixes are exact)."""
    units = {
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
        "k": 10**3,
        "M": 10**6,
        "G": 10**9,
    }
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return str(int(float(quantity[: -len(suffix)]) * factor))
    return str(int(float(quantity)))


def _cpus(quantity: str) -> str:
    return str(int(quantity[:-1]) / 1000) if quantity.endswith("m") else str(float(quantity))


def command_args(container: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """(podman flags, trailing argv): command replaces ENTRYPOINT, args replace CMD.

    podman takes a JSON array for ``--entrypoint`` (exec form, no shell). With a command,
    args (possibly none) follow it; with args only, the image ENTRYPOINT stays and args
    replace CMD; with neither, the image defaults run.
    """
    command, args = container.get("command"), container.get("args")
    if command:
        return [
            "--entrypoint",
            json.dumps(list(command)),
        ], list(args or [])
    return [], list(args or [])
