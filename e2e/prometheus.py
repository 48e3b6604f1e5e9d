"""Prometheus stand-in configuration derived from the rendered monitoring objects (pure part).

For each ServiceMonitor: the Services its ``selector``/``namespaceSelector`` match, then the
pods behind those Services, scraped at ``podIP:containerPort`` of the endpoint's *named* port,
at the endpoint's path, with basicAuth read from the referenced Secret keys. So a selector,
port, path or credential mismatch in the rendered objects shows up as a missing or down target,
as it would under the Prometheus Operator. The Pushgateway is scraped with
``honor_labels: true``. Intervals are shortened to ``interval`` for the e2e.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from e2e.manifests import Key, ManifestError, selector_matches


def _namespaces(monitor: Mapping[str, Any]) -> set[str] | None:
    """Namespaces a ServiceMonitor looks in (``None``: any)."""
    sel = monitor["spec"].get("namespaceSelector") or {}
    if sel.get("any"):
        return None
    return set(sel.get("matchNames") or [monitor["metadata"]["namespace"]])


def scrape_configs(
    objects: Mapping[Key, dict],
    pod_ips: Mapping[str, list[str]],
    secrets: Mapping[str, Mapping[str, str]],
    pushgateway: str,
    interval: str = "5s",
) -> list[dict]:
    """Prometheus ``scrape_configs`` for every ServiceMonitor endpoint plus the Pushgateway.

    ``pod_ips`` maps a workload (Deployment) name to its running pods' IPs; a workload whose
    pod template the Service selects contributes those IPs. Endpoints that find no pod still get
    a job (with no targets), so "nothing scraped" is visible in ``series_missing``.
    """
    configs = []
    for (ns, kind, name), monitor in sorted(objects.items()):
        if kind != "ServiceMonitor":
            continue
        for i, endpoint in enumerate(monitor["spec"].get("endpoints") or []):
            job = {
                "job_name": f"serviceMonitor/{ns}/{name}/{i}",
                "scrape_interval": interval,
                "metrics_path": endpoint.get("path", "/metrics"),
                "static_configs": [{"targets": _targets(objects, monitor, endpoint, pod_ips)}],
            }
            if "basicAuth" in endpoint:
                job["basic_auth"] = _basic_auth(endpoint["basicAuth"], secrets)
            configs.append(job)
    configs.append(
        {
            "job_name": "pushgateway",
            "honor_labels": True,
            "scrape_interval": interval,
            "static_configs": [{"targets": [pushgateway]}],
        }
    )
    return configs


def _targets(
    objects: Mapping[Key, dict],
    monitor: Mapping[str, Any],
    endpoint: Mapping[str, Any],
    pod_ips: Mapping[str, list[str]],
) -> list[str]:
    namespaces = _namespaces(monitor)
    targets: list[str] = []
    for (ns, kind, _), service in sorted(objects.items()):
        if kind != "Service" or (namespaces is not None and ns not in namespaces):
            continue
        if not selector_matches(
            monitor["spec"].get("selector"), service["metadata"].get("labels") or {}
        ):
            continue
        if endpoint.get("port") not in {p.get("name") for p in service["spec"].get("ports", [])}:
            continue  # the Operator needs the Service port name to match
        for (wns, wkind, wname), workload in sorted(objects.items()):
            if wkind != "Deployment" or wns != ns:
                continue
            template = workload["spec"]["template"]
            labels = (template.get("metadata") or {}).get("labels") or {}
            if not selector_matches(service["spec"].get("selector"), labels):
                continue
            port = _container_port(template["spec"], endpoint["port"])
            if port is not None:
                targets += [f"{ip}:{port}" for ip in pod_ips.get(wname, [])]
    return targets


def _container_port(pod_spec: Mapping[str, Any], name: str) -> int | None:
    for container in pod_spec["containers"]:
        for port in container.get("ports", []):
            if port.get("name") == name:
                return int(port["containerPort"])
    return None


def _basic_auth(auth: Mapping[str, Any], secrets: Mapping[str, Mapping[str, str]]) -> dict:
    out = {}
    for field in ("username", "password"):
        ref = auth[field]
        data = secrets.get(ref["name"])
        if data is None or ref["key"] not in data:
            raise ManifestError(
                f"basicAuth {field}: Secret {ref['name']!r} key {ref['key']!r} missing"
            )
        out[field] = data[ref["key"]]
    return out
