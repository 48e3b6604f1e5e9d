"""The :class:`Platform` every target yields, and what all targets share: the application
namespace with its baseline NetworkPolicies, and the Secrets pods read connections from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components import security
from components.monitoring import PUSHGATEWAY_PORT
from components.types import Backends, Cluster, SecretRef

# The drift monitor talks to the API server (Service port 443, usually DNAT-ed to 6443).
API_SERVER_CLIENTS = {
    "app.kubernetes.io/name": "monitoring",
    "app.kubernetes.io/component": "drift",
}


@dataclass(frozen=True)
class Platform:
    """Everything components need from a target, and the target's own stack outputs."""

    provider: k8s.Provider
    cluster: Cluster
    backends: Backends
    outputs: Mapping[str, pulumi.Input[object]] = field(default_factory=dict)


def app_namespace(
    name: str, namespace: str, egress: Sequence[dict], opts: pulumi.ResourceOptions
) -> k8s.core.v1.Namespace:
    """The first-party namespace: PSS ``restricted``, default-deny, explicit egress allows.

    Ingress allows come with each component (it knows its ports); egress is allowed to the
    namespace itself, DNS, the Pushgateway, the backing services (``egress``) and, for the
    drift monitor only, the API server.
    """
    ns = k8s.core.v1.Namespace(
        f"{name}-namespace",
        metadata={"name": namespace, "labels": security.namespace_labels("restricted")},
        opts=opts,
    )
    ref = ns.metadata["name"]
    security.default_deny(f"{name}-default-deny", ref, opts)
    allows: dict[str, tuple[dict, list[dict]]] = {
        "dns": ({}, [security.DNS_EGRESS]),
        "same-namespace": ({}, [security.allow_to([security.pod_peer()])]),
        "pushgateway": (
            {},
            [
                security.allow_to(
                    [security.namespace_peer("monitoring")], security.tcp_ports(PUSHGATEWAY_PORT)
                )
            ],
        ),
        "backends": ({}, list(egress)),
        "api-server": (
            API_SERVER_CLIENTS,
            [
                security.allow_to(
                    [{"ipBlock": {"cidr": "0.0.0.0/0"}}], security.tcp_ports(443, 6443)
                )
            ],
        ),
    }
    for role, (selector, rules) in allows.items():
        security.network_policy(
            f"{name}-allow-{role}-egress", ref, selector, egress=rules, opts=opts
        )
    return ns


def connection_secrets(
    name: str,
    namespace: pulumi.Input[str],
    values: Mapping[str, pulumi.Output[str]],
    opts: pulumi.ResourceOptions,
) -> dict[str, SecretRef]:
    """One Secret per backing service (key ``url``) in the application namespace."""
    refs = {}
    for service, value in values.items():
        secret = k8s.core.v1.Secret(
            f"{name}-{service}",
            metadata={
                "name": f"mlops-{service}",
                "namespace": namespace,
                "labels": security.labels(service, "connection"),
            },
            type="Opaque",
            string_data={"url": pulumi.Output.secret(value)},
            opts=opts,
        )
        refs[service] = SecretRef(secret.metadata["name"], "url")
    return refs


def backends(
    refs: Mapping[str, SecretRef],
    database_url: pulumi.Output[str],
    redis_url: pulumi.Output[str],
    feast_redis: pulumi.Output[str],
    **kw: object,
) -> Backends:
    """Assemble :class:`Backends`, marking every connection string secret."""
    return Backends(
        database_url=pulumi.Output.secret(database_url),
        database=refs["database"],
        redis_url=pulumi.Output.secret(redis_url),
        redis=refs["redis"],
        feast_redis=pulumi.Output.secret(feast_redis),
        **kw,  # type: ignore[arg-type]
    )


def cluster(
    cfg_namespace: str,
    ns: k8s.core.v1.Namespace,
    storage_class: str | None,
    ingress_class: str | None,
    annotations: Mapping[str, Mapping[str, pulumi.Input[str]]],
) -> Cluster:
    return Cluster(
        namespace=cfg_namespace,
        namespace_ref=ns.metadata["name"],
        storage_class=storage_class,
        ingress_class=ingress_class,
        service_account_annotations=annotations,
    )
