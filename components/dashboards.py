"""Grafana dashboards as code (provisioned as ConfigMaps by the Monitoring component)."""

from __future__ import annotations


def dashboards() -> dict[str, dict]:
    """Dashboard file name (e.g. ``service-health.json``) -> Grafana dashboard JSON model."""
    return {}
