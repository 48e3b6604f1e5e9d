"""Views of the rendered manifests the contract tests check: pods, containers, what they run.

Everything here reads the objects ``infra.render`` writes; nothing knows a component's names, so
a renamed Deployment or ConfigMap is still found (by its references, not by its name).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "infra" / "images"
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
# Stack config key of each first-party image -> the Dockerfile it is built from.
IMAGE_CONFIG = {"mlops:mlImage": "ml.Dockerfile", "mlops:servingImage": "serving.Dockerfile"}
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


@dataclass(frozen=True)
class Container:
    """One container of one rendered pod template, with the pod it belongs to."""

    stack: str
    owner: dict  # the Deployment/Job/CronJob
    spec: dict  # the container
    pod: dict  # the pod spec
    image_process: tuple[list[str], list[str]] | None  # image (ENTRYPOINT, CMD); None: not ours

    @property
    def first_party(self) -> bool:
        """Built from a Dockerfile of this repository (one of the stack's configured images)."""
        return self.image_process is not None

    @property
    def where(self) -> str:
        """How a failure names it: ``stack:Kind/name[container]``."""
        meta = self.owner["metadata"]
        name = meta.get("name") or meta.get("generateName")
        return f"{self.stack}:{self.owner['kind']}/{name}[{self.spec['name']}]"

    @property
    def namespace(self) -> str | None:
        return self.owner["metadata"].get("namespace")

    @property
    def env(self) -> dict[str, dict]:
        """The container's ``env`` entries by name."""
        return {e["name"]: e for e in self.spec.get("env", [])}

    def argv(self) -> list[str]:
        """What the container runs: Kubernetes' command/args over the image's ENTRYPOINT/CMD.

        ``command`` replaces ENTRYPOINT and drops CMD; ``args`` alone replace CMD; an empty list
        counts as unset. ``$(VAR)`` expands from the container's literal env, as the kubelet does.
        """
        entrypoint, cmd = self.image_process or ([], [])
        command, args = self.spec.get("command"), self.spec.get("args")
        argv = [*command, *(args or [])] if command else [*entrypoint, *(args if args else cmd)]
        values = {k: e["value"] for k, e in self.env.items() if "value" in e}
        return [_VAR.sub(lambda m: values.get(m[1], m[0]), a) for a in argv]


def pod_template(obj: dict) -> dict:
    """The pod template of a workload object."""
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    return obj["spec"]["template"]


def workloads(objects: list[dict]) -> list[dict]:
    """Every pod-bearing object, including Job manifests carried as JSON inside a ConfigMap."""
    found = [o for o in objects if o["kind"] in WORKLOAD_KINDS]
    for cm in (o for o in objects if o["kind"] == "ConfigMap"):
        for value in (cm.get("data") or {}).values():
            if value.lstrip().startswith("{") and '"kind"' in value:
                with_kind = json.loads(value)
                if with_kind.get("kind") in WORKLOAD_KINDS:
                    with_kind["metadata"].setdefault("namespace", cm["metadata"].get("namespace"))
                    found.append(with_kind)
    return found


def containers(stack: str, objects: list[dict], config: dict[str, str]) -> list[Container]:
    """Every (init) container of every rendered workload; ``config`` is the stack's config."""
    images = {
        config[k]: image_defaults(IMAGES / f) for k, f in IMAGE_CONFIG.items() if k in config
    }
    out = []
    for obj in workloads(objects):
        pod = pod_template(obj)["spec"]
        for spec in [*pod.get("initContainers", []), *pod.get("containers", [])]:
            out.append(Container(stack, obj, spec, pod, images.get(spec.get("image", ""))))
    return out


def image_defaults(dockerfile: Path) -> tuple[list[str], list[str]]:
    """ENTRYPOINT and CMD of the final stage of a Dockerfile (``infra/images/*.Dockerfile``)."""
    found: dict[str, list[str]] = {"ENTRYPOINT": [], "CMD": []}
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "FROM":  # a new stage starts with neither
            found = {"ENTRYPOINT": [], "CMD": []}
        if word in found:  # the last one wins, as in Docker (HEALTHCHECK CMD is not a CMD)
            rest = rest.strip()
            found[word] = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
    return found["ENTRYPOINT"], found["CMD"]


def by_name(objects: list[dict], kind: str, namespace: str | None, name: str) -> dict | None:
    """The rendered object of that kind and name in that namespace, if any."""
    for obj in objects:
        meta = obj["metadata"]
        same = obj["kind"] == kind and meta.get("name") == name
        if same and (namespace is None or meta.get("namespace") in (None, namespace)):
            return obj
    return None


def data_keys(obj: dict) -> set[str]:
    """Keys of a ConfigMap's or Secret's data (data, binaryData, stringData)."""
    return {k for f in ("data", "binaryData", "stringData") for k in (obj.get(f) or {})}


def data_value(obj: dict, key: str) -> str | None:
    """The text of one key of a ConfigMap/Secret (Secret ``data`` is base64)."""
    import base64

    if key in (obj.get("stringData") or {}):
        return obj["stringData"][key]
    if key in (obj.get("data") or {}):
        value = obj["data"][key]
        return base64.b64decode(value).decode() if obj["kind"] == "Secret" else value
    return None


@dataclass(frozen=True)
class MountedFile:
    """Where a file path inside a container comes from: a key of a ConfigMap or Secret."""

    kind: str  # ConfigMap or Secret
    name: str
    key: str
    sub_path: bool  # mounted with subPath: Kubernetes never updates the file


def mounted_file(container: Container, path: str) -> MountedFile | str:
    """Resolve a file path to the ConfigMap/Secret key mounted there, or say why it cannot."""
    file = PurePosixPath(path)
    volumes = {v["name"]: v for v in container.pod.get("volumes", [])}
    for mount in container.spec.get("volumeMounts", []):
        at = PurePosixPath(mount["mountPath"])
        if file != at and at not in file.parents:
            continue
        volume = volumes.get(mount["name"])
        if volume is None:
            return f"volumeMount {mount['name']!r} has no volume"
        relative = str(file.relative_to(at)) if file != at else mount.get("subPath", "")
        source = volume.get("configMap") or volume.get("secret")
        if source is None:
            return f"{path} is on volume {mount['name']!r}, which is no ConfigMap/Secret"
        kind = "ConfigMap" if "configMap" in volume else "Secret"
        if mount.get("subPath"):
            relative = mount["subPath"] if file == at else f"{mount['subPath']}/{relative}"
        items = {i["path"]: i["key"] for i in source.get("items", [])}
        key = items.get(relative, relative) if items else relative
        name = source.get("name") or source.get("secretName")
        return MountedFile(kind, name, key, bool(mount.get("subPath")))
    return f"no volume is mounted at {path}"


def no_problems(problems: list[str]) -> None:
    """Fail with every problem on its own line (the lead reads this list, not a traceback)."""
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(sorted(problems))
