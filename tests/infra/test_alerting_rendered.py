"""promtool on the rules as rendered: the PrometheusRule the local stack would apply."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components import alerting

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_alerting import NAMESPACE, run_promtool
except ImportError:  # pragma: no cover
    from tests.infra.test_alerting import NAMESPACE, run_promtool


@pytest.mark.slow
def test_rendered_prometheus_rule_passes_promtool(tmp_path: Path) -> None:
    from infra.render import render

    render("local", tmp_path / "render")
    docs = [yaml.safe_load(p.read_text()) for p in (tmp_path / "render/manifests").glob("*.yaml")]
    [rule] = [d for d in docs if d and d.get("kind") == "PrometheusRule"]
    groups = rule["spec"]["groups"]
    namespace = rule["metadata"]["namespace"]
    assert groups == alerting.rule_groups(namespace=namespace)
    if namespace != NAMESPACE:
        pytest.skip(f"local stack runs Jobs in {namespace!r}; the cases assume {NAMESPACE!r}")
    run_promtool(groups, tmp_path)
