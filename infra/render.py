"""Render a stack offline: run the real Pulumi program under mocks and record what it creates.

:func:`render` loads ``Pulumi.yaml`` (project defaults) and ``stacks/Pulumi.<stack>.yaml``,
runs ``infra/__main__.py`` with :func:`pulumi.runtime.set_mocks`, and writes

* ``<out>/inventory.json``: one ``{"type", "name", "parent", "inputs", "protect"}`` object per
  resource (components, providers and Helm releases included), secrets shown as ``"[secret]"``;
* ``<out>/manifests/*.yaml``: each Kubernetes object as it would be applied, one per file.

With ``reveal=True`` (for the e2e harness, which runs the manifests) generated passwords are
real random values (``secrets``) and secret values are written in clear, files mode 0600.
Without it the output is redacted and deterministic.

The mocks answer with realistic outputs (ARNs, endpoints, generated passwords) so that the
program's string building runs exactly as it does under ``pulumi up``.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import runpy
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pulumi.runtime import rpc, set_all_config, set_mocks, settings
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from ml.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SECRET = "[secret]"
_SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's wire marker of a secret value


@dataclass(frozen=True)
class Resource:
    type: str
    name: str
    parent: str | None
    inputs: dict
    protect: bool
    depends_on: tuple[str, ...] = ()
    """Names of the resources it waits for (explicit ``depends_on`` and its inputs' sources)."""

    def as_json(self) -> dict:
        return {
            "type": self.type,
            "name": self.name,
            "parent": self.parent,
            "inputs": self.inputs,
            "protect": self.protect,
            "depends_on": list(self.depends_on),
        }


def stack_names(root: Path = ROOT) -> list[str]:
    return sorted(
        p.name[len("Pulumi.") : -len(".yaml")] for p in (root / "stacks").glob("Pulumi.*.yaml")
    )


def stack_config(stack: str, root: Path = ROOT) -> dict[str, str]:
    """The stack's config as the Pulumi CLI would pass it: project defaults, then stack values.

    Values are strings; arrays and objects JSON-encoded, keys namespaced (``mlops:owner``).
    """
    path = root / "stacks" / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise UserError(f"unknown stack {stack!r}", f"use one of {', '.join(stack_names(root))}")
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    merged: dict[str, Any] = {
        f"{project['name']}:{key}": spec["default"]
        for key, spec in project.get("config", {}).items()
        if isinstance(spec, dict) and "default" in spec
    }
    merged.update((yaml.safe_load(path.read_text()) or {}).get("config") or {})
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in merged.items()}


def render(
    stack: str, out: Path | None = None, root: Path = ROOT, reveal: bool = False
) -> list[Resource]:
    """Run the program for ``stack`` under mocks; write inventory and manifests if ``out``.

    ``reveal``: random passwords and secret values in clear (files 0600); see module doc.

    Raises:
        UserError: unknown stack or invalid configuration (one line, naming the key).
    """
    config = stack_config(stack, root)
    resources = contextvars.copy_context().run(_run, stack, config, root, reveal)
    if out is not None:
        write(resources, out, private=reveal)
    return resources


def _run(stack: str, config: dict[str, str], root: Path, reveal: bool) -> list[Resource]:
    from infra.config import RENDERING

    RENDERING.set(True)  # in this copied context only: the stack files' placeholders are fine
    settings.ROOT.set(None)
    mocks = _Mocks(config.get("aws:region", "us-east-1"), reveal)
    monitor = _RecordingMonitor(mocks)
    set_mocks(mocks, project="mlops", stack=stack, preview=False, monitor=monitor)
    set_all_config(config)
    main = str(root / "infra" / "__main__.py")
    _sync_await(run_pulumi_func(lambda: _run_program(main)))
    return monitor.recorded(reveal)


def write(resources: list[Resource], out: Path, private: bool = False) -> None:
    """Write ``inventory.json`` and ``manifests/`` (replacing earlier manifests).

    ``private``: files are created mode 0600 (they hold secrets in clear).
    """
    manifests = out / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    for old in manifests.glob("*.yaml"):
        old.unlink()
    _write_text(
        out / "inventory.json",
        json.dumps([r.as_json() for r in resources], indent=2, sort_keys=True) + "\n",
        private,
    )
    for obj in kubernetes_objects(resources):
        meta = obj["metadata"]
        stem = f"{meta.get('namespace', '_cluster')}_{obj['kind'].lower()}_{meta['name']}"
        _write_text(manifests / f"{stem}.yaml", yaml.safe_dump(obj, sort_keys=False), private)


def _write_text(path: Path, text: str, private: bool) -> None:
    """Write ``text``; when ``private`` the file is 0600 before any byte lands in it."""
    if not private:
        path.write_text(text)
        return
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def kubernetes_objects(resources: list[Resource]) -> list[dict]:
    """The Kubernetes objects among ``resources`` (Helm releases excluded: see inventory)."""
    objects = []
    for r in resources:
        if not r.type.startswith("kubernetes:") or r.type.startswith(
            ("kubernetes:helm.sh", "pulumi:providers")
        ):
            continue
        body = dict(r.inputs)
        head = {"apiVersion": body.pop("apiVersion"), "kind": body.pop("kind")}
        objects.append({**head, "metadata": body.pop("metadata"), **body})
    return objects


def _clean(value: Any, reveal: bool = False) -> Any:
    """Mock inputs -> JSON: secrets redacted (unless ``reveal``), integral floats back to ints,
    nulls dropped."""
    if isinstance(value, dict):
        if _SECRET_SIG in value:
            return _clean(value.get("value"), reveal) if reveal else _redact(value.get("value"))
        return {k: _clean(v, reveal) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v, reveal) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _redact(value: Any) -> Any:
    """A secret's shape with every leaf replaced, so redacted objects still validate."""
    if isinstance(value, dict):
        return {k: _redact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v) for v in value]
    return SECRET


def _decode_provider_inputs(inputs: dict) -> dict:
    """Provider config arrives JSON-encoded (e.g. AWS ``defaultTags``); decode it for reading."""
    decoded = {}
    for key, value in inputs.items():
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(json.JSONDecodeError):
                value = json.loads(value)
        decoded[key] = value
    return decoded


class _RecordingMonitor(MockMonitor):
    """A MockMonitor that also records each registration's parent and protect flag."""

    def __init__(self, mocks: Mocks) -> None:
        super().__init__(mocks)
        self._lock = threading.Lock()
        self._records: list[tuple[str, str, str, str, dict, bool, list[str]]] = []

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            record = (response.urn, request.parent, request.type, request.name, inputs)
            with self._lock:
                self._records.append((*record, bool(request.protect), list(request.dependencies)))
        return response

    def recorded(self, reveal: bool = False) -> list[Resource]:
        names = {urn: name for urn, _, _, name, _, _, _ in self._records}
        out = []
        for _, parent, typ, name, inputs, protect, deps in self._records:
            clean = _clean(inputs, reveal)
            if typ.startswith("pulumi:providers:"):
                clean = _decode_provider_inputs(clean)
            depends_on = tuple(sorted({names[d] for d in deps if d in names}))
            out.append(Resource(typ, name, names.get(parent), clean, protect, depends_on))
        return sorted(out, key=lambda r: (r.type, r.name))


def _fake(seed: str, length: int = 24) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()[:length]


class _Mocks(Mocks):
    """Realistic outputs for the resources and provider functions the program uses."""

    def __init__(self, region: str, reveal: bool = False) -> None:
        self.region = region
        self.reveal = reveal

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict]:
        state = dict(args.inputs)
        outputs = _outputs(args.typ, args.name, state, self.region)
        if self.reveal and args.typ.startswith("random:"):
            # Real randomness for a stack that is run, not just read (hex: URL-safe).
            length = int(state.get("length", 24))
            outputs["result"] = secrets.token_hex(length)[:length]
        return f"{args.name}-id", {**state, **outputs}

    def call(self, args: MockCallArgs) -> tuple[dict, list]:
        return _call(args.token, self.region), []


def _outputs(typ: str, name: str, inputs: dict, region: str) -> dict:
    """Outputs a provider would compute, keyed by type token."""
    account, arn = (
        "123456789012",
        f"arn:aws:{typ.split(':')[1].split('/')[0]}:{region}:123456789012:{name}",
    )
    if typ.startswith("random:"):
        return {
            "result": _fake(name, int(inputs.get("length", 24))),
            "bcryptHash": _fake("b" + name),
            "hex": _fake(name, 2 * int(inputs.get("byteLength", 4))),  # RandomId
        }
    if typ == "aws:eks/cluster:Cluster":
        issuer = f"https://oidc.eks.{region}.amazonaws.com/id/{_fake(name, 32).upper()}"
        return {
            "arn": arn,
            "name": inputs.get("name", name),
            "endpoint": f"https://{_fake(name, 32).upper()}.gr7.{region}.eks.amazonaws.com",
            "certificateAuthority": {"data": "LS0tLS1CRUdJTi1DRVJUSUZJQ0FURS0tLS0t"},
            "identities": [{"oidcs": [{"issuer": issuer}]}],
            "vpcConfig": {
                **inputs.get("vpcConfig", {}),
                "clusterSecurityGroupId": f"sg-{_fake(name, 17)}",
            },
        }
    if typ == "aws:rds/instance:Instance":
        host = f"{name}.{_fake(name, 12)}.{region}.rds.amazonaws.com"
        return {"arn": arn, "address": host, "endpoint": f"{host}:5432", "port": 5432}
    if typ == "aws:elasticache/replicationGroup:ReplicationGroup":
        host = f"master.{name}.{_fake(name, 6)}.euw1.cache.amazonaws.com"
        return {"arn": arn, "primaryEndpointAddress": host, "port": 6379}
    if typ == "aws:s3/bucket:Bucket":
        bucket = inputs.get("bucket") or f"{name}-{_fake(name, 7)}"
        return {"arn": f"arn:aws:s3:::{bucket}", "bucket": bucket}
    if typ == "aws:ecr/repository:Repository":
        repo = inputs.get("name", name)
        return {"arn": arn, "repositoryUrl": f"{account}.dkr.ecr.{region}.amazonaws.com/{repo}"}
    if typ == "aws:iam/openIdConnectProvider:OpenIdConnectProvider":
        host = str(inputs.get("url", "")).removeprefix("https://")
        return {"arn": f"arn:aws:iam::{account}:oidc-provider/{host}"}
    if typ.startswith("aws:iam/role:"):
        return {"arn": f"arn:aws:iam::{account}:role/{name}", "name": name}
    if typ.startswith("aws:"):
        return {"arn": arn, "id": f"{name}-id"}
    return {}


def _call(token: str, region: str) -> dict:
    if token == "aws:index/getAvailabilityZones:getAvailabilityZones":
        return {"names": [f"{region}{z}" for z in "abcdef"], "zoneIds": [], "id": region}
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": "123456789012", "arn": "arn:aws:iam::123456789012:user/mock"}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com"}
    return {}


def _run_program(main: str) -> None:
    """Execute ``infra/__main__.py`` as Pulumi would (its module globals are not needed)."""
    runpy.run_path(main, run_name="__main__")
