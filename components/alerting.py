"""Prometheus alert rules for the platform (the PrometheusRule ``spec.groups``)."""

from __future__ import annotations


def rule_groups() -> list[dict]:
    """The PrometheusRule ``spec.groups`` list (also a valid promtool rules file's ``groups``)."""
    return []
