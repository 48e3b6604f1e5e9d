"""The one place that decides how a first-party pod is secured and resourced.

Every first-party container is built with :func:`container` and every pod spec with
:func:`pod_spec`, so the Pod Security Standard ``restricted`` profile, resources, probes and the
writable ``/tmp`` are the same everywhere and the infra tests check one policy. Namespaces get
their labels from :func:`namespace_labels`, and NetworkPolicies start from :func:`default_deny`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

# Non-root UID/GID the first-party images are built for (any UID works: they write to /tmp).
RUN_AS_USER = 10001
TMP = {"name": "tmp", "mountPath": "/tmp"}
_TMP_VOLUME = {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}}

_CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_USER,
    "runAsGroup": RUN_AS_USER,
    "fsGroup": RUN_AS_USER,
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container; every first-party container sets both."""

    cpu: str = "100m"
    memory: str = "256Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"

    def spec(self) -> dict:
        return {
            "requests": {"cpu": self.cpu, "memory": self.memory},
            "limits": {"cpu": self.cpu_limit, "memory": self.memory_limit},
        }


BATCH = Resources(cpu="250m", memory="512Mi", cpu_limit="2", memory_limit="2Gi")


def labels(app: str, component: str) -> dict[str, str]:
    """Recommended Kubernetes labels of a first-party object (selectors use the first two)."""
    return {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "mlops",
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector(app: str, component: str) -> dict[str, str]:
    """The immutable subset of :func:`labels` that Deployments and Services select on."""
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/component": component}


def namespace_labels(enforce: str = "restricted") -> dict[str, str]:
    """Pod Security Admission labels; first-party namespaces enforce ``restricted``."""
    return {
        "pod-security.kubernetes.io/enforce": enforce,
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
        "app.kubernetes.io/part-of": "mlops",
    }


def http_probe(path: str, port: int | str, host: str | None = None) -> dict:
    """An HTTP GET probe handler; ``host`` sets the Host header for host-checking servers."""
    get: dict = {"path": path, "port": port}
    if host:
        get["httpHeaders"] = [{"name": "Host", "value": host}]
    return {"httpGet": get}


def tcp_probe(port: int | str) -> dict:
    return {"tcpSocket": {"port": port}}


def container(
    name: str,
    image: pulumi.Input[str],
    *,
    args: Sequence[pulumi.Input[str]] = (),
    command: Sequence[str] | None = None,
    env: Sequence[dict] = (),
    ports: Sequence[dict] = (),
    probe: dict | None = None,
    liveness: dict | None = None,
    resources: Resources = Resources(),
    mounts: Sequence[dict] = (),
) -> dict:
    """A hardened container spec.

    Args:
        probe: the probe handler (see :func:`http_probe`); long-running containers must pass
            one and get it as readiness probe, and as liveness probe unless ``liveness`` is
            given. Batch containers pass None: a Job's success is its exit code, and a
            liveness probe would only kill long runs.

    Returns:
        The container as a camelCase dict, ready for a pod template.
    """
    spec: dict = {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": list(args),
        "env": [{"name": "HOME", "value": "/tmp"}, *env],
        "ports": list(ports),
        "resources": resources.spec(),
        "securityContext": dict(_CONTAINER_SECURITY),
        "volumeMounts": [TMP, *mounts],
    }
    if command is not None:
        spec["command"] = list(command)
    if probe is not None:
        spec["readinessProbe"] = {**probe, "periodSeconds": 10, "failureThreshold": 3}
        spec["livenessProbe"] = {
            **(liveness or probe),
            "initialDelaySeconds": 30,
            "periodSeconds": 20,
            "failureThreshold": 5,
        }
    return spec


def pod_spec(
    containers: Sequence[dict],
    *,
    service_account: pulumi.Input[str],
    needs_api_token: bool = False,
    volumes: Sequence[dict] = (),
    restart_policy: str | None = None,
) -> dict:
    """A restricted pod spec: non-root, RuntimeDefault seccomp, a writable /tmp only.

    Args:
        needs_api_token: mount the ServiceAccount token; only pods that call the Kubernetes
            API (the drift monitor creating retrain Jobs) need it.
    """
    spec: dict = {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": needs_api_token,
        "securityContext": dict(_POD_SECURITY),
        "containers": list(containers),
        "volumes": [_TMP_VOLUME, *volumes],
        "enableServiceLinks": False,
    }
    if restart_policy:
        spec["restartPolicy"] = restart_policy
    return spec


def secret_volume(name: str, secret_name: pulumi.Input[str]) -> dict:
    return {"name": name, "secret": {"secretName": secret_name, "defaultMode": 0o440}}


def default_deny(
    name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> k8s.networking.v1.NetworkPolicy:
    """Deny all ingress and egress of every pod in a namespace; allows are added explicitly."""
    return network_policy(name, namespace, {}, ingress=[], egress=[], opts=opts)


def network_policy(
    name: str,
    namespace: pulumi.Input[str],
    pod_selector: dict,
    *,
    ingress: list[dict] | None = None,
    egress: list[dict] | None = None,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """A NetworkPolicy for the pods matching ``pod_selector`` (``{}``: all pods).

    A direction given as a list is governed by the policy (an empty list allows nothing);
    a direction left as None is not touched, so an allow-only policy never denies the other.
    """
    spec: dict = {"podSelector": {"matchLabels": pod_selector} if pod_selector else {}}
    types = []
    for direction, rules in (("Ingress", ingress), ("Egress", egress)):
        if rules is not None:
            types.append(direction)
            if rules:
                spec[direction.lower()] = rules
    spec["policyTypes"] = types
    return k8s.networking.v1.NetworkPolicy(
        name,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=name, namespace=namespace, labels={"app.kubernetes.io/part-of": "mlops"}
        ),
        # Built from data above; its shape is checked by kubernetes-validate in the tests.
        spec=cast(Any, spec),
        opts=opts,
    )


def namespace_peer(namespace: str) -> dict:
    """A NetworkPolicy peer: every pod of ``namespace``."""
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}


def pod_peer(match_labels: dict[str, str] | None = None) -> dict:
    """A NetworkPolicy peer: pods of the policy's own namespace (all of them if no labels)."""
    return {"podSelector": {"matchLabels": match_labels} if match_labels else {}}


def tcp_ports(*ports: int | str) -> list[dict]:
    return [{"port": p, "protocol": "TCP"} for p in ports]


def allow_from(peers: Sequence[dict], ports: Sequence[dict] = ()) -> dict:
    """An ingress rule (no ports: any port)."""
    return {"from": list(peers), **({"ports": list(ports)} if ports else {})}


def allow_to(peers: Sequence[dict], ports: Sequence[dict] = ()) -> dict:
    """An egress rule (no ports: any port)."""
    return {"to": list(peers), **({"ports": list(ports)} if ports else {})}


# DNS lookups go to kube-dns/CoreDNS in kube-system on every distribution we target.
DNS_EGRESS = allow_to(
    [
        {
            **namespace_peer("kube-system"),
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}],
)
