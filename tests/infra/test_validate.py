"""Every rendered Kubernetes object passes `kubernetes-validate --strict` for the deployed version.

kubernetes-validate ships schemas for built-in kinds only: for a custom resource it raises
``SchemaNotFoundError`` (its CLI merely warns and exits 0, i.e. skips silently). Here the
custom kinds are listed explicitly, and each is checked structurally by this module instead;
an unexpected kind without a schema fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
from kubernetes_validate.utils import SchemaNotFoundError

from infra.render import stack_config

# The version the AWS stacks deploy; the local stack runs on the kind node image
# scripts/bootstrap_kind.sh pins.
K8S_VERSION = f"{stack_config('aws-dev')['mlops:kubernetesVersion']}.0"
_KIND_NODE = re.search(
    r'NODE_IMAGE="kindest/node:v(\d+\.\d+)\.\d+@sha256:[0-9a-f]{64}"',
    (Path(__file__).parents[2] / "scripts" / "bootstrap_kind.sh").read_text(),
)
VERSIONS = {"local": f"{_KIND_NODE[1]}.0", "aws-dev": K8S_VERSION, "aws-prod": K8S_VERSION}
DNS_1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _service_monitor(obj: dict) -> None:
    spec = obj["spec"]
    assert spec["selector"]["matchLabels"], "a ServiceMonitor must select something"
    assert spec["namespaceSelector"]["matchNames"] == [obj["metadata"]["namespace"]]
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval", "scheme", "basicAuth"}
        assert isinstance(endpoint["port"], str) and endpoint["path"].startswith("/")
        for part in endpoint.get("basicAuth", {}).values():
            assert set(part) == {"name", "key"}


def _prometheus_rule(obj: dict) -> None:
    groups = obj["spec"]["groups"]
    assert groups and len({g["name"] for g in groups}) == len(groups)
    for group in groups:
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule), rule
            assert isinstance(rule["expr"], str) and rule["expr"].strip()
            assert set(rule) <= {"alert", "record", "expr", "for", "labels", "annotations"}


def _cnpg_cluster(obj: dict) -> None:
    spec = obj["spec"]
    assert spec["instances"] >= 1 and ":" in spec["imageName"]
    initdb = spec["bootstrap"]["initdb"]
    assert {"database", "owner", "secret"} <= set(initdb)
    assert spec["storage"]["size"]


CUSTOM_KINDS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): _service_monitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): _prometheus_rule,
    ("postgresql.cnpg.io/v1", "Cluster"): _cnpg_cluster,
}


def test_every_object_validates(rendered) -> None:
    failures, custom = [], []
    for obj in rendered.objects:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            kubernetes_validate.validate(obj, VERSIONS[rendered.stack], strict=True)
        except SchemaNotFoundError:
            custom.append(obj)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(p) for p in error.path)
            failures.append(f"{name}: {path}: {error.message}")
    assert not failures, "\n".join(failures)
    for obj in custom:
        check = CUSTOM_KINDS.get((obj["apiVersion"], obj["kind"]))
        assert check, f"no schema and no structural check for {obj['apiVersion']} {obj['kind']}"
        _metadata(obj)
        check(obj)


@pytest.mark.parametrize("kind", sorted({k for _, k in CUSTOM_KINDS}))
def test_custom_kinds_really_have_no_builtin_schema(kind) -> None:
    """Guards the exemption: if kubernetes-validate gains a schema, validate with it."""
    api = next(a for a, k in CUSTOM_KINDS if k == kind)
    with pytest.raises(SchemaNotFoundError):
        kubernetes_validate.validate(
            {"apiVersion": api, "kind": kind, "metadata": {"name": "x"}}, K8S_VERSION, True
        )


def _metadata(obj: dict) -> None:
    meta = obj["metadata"]
    assert set(meta) <= {"name", "namespace", "labels", "annotations"}
    assert DNS_1123.match(meta["name"]) and len(meta["name"]) <= 253
    assert DNS_1123.match(meta["namespace"])
    assert all(isinstance(v, str) for v in meta.get("labels", {}).values())
    assert isinstance(obj["spec"], dict)
