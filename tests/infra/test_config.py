"""Bad configuration fails with one clear line naming the key, before any resource exists."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from infra import config, render
from ml.errors import UserError


def _raw(stack: str = "aws-dev", **override: object) -> dict[str, str]:
    merged = {
        k.split(":", 1)[1]: v
        for k, v in render.stack_config(stack).items()
        if k.startswith("mlops:")
    }
    merged["region"] = "eu-west-1"
    for key, value in override.items():
        merged[key] = value if isinstance(value, str) else json.dumps(value)
    return merged


@pytest.mark.parametrize("stack", ["local", "aws-dev", "aws-prod"])
def test_committed_stacks_are_valid(stack) -> None:
    cfg = config.parse(_raw(stack))
    assert cfg.target == ("local" if stack == "local" else "aws")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("servingReplicas", "0", "greater than or equal to 1"),
        ("servingReplicas", "many", "valid integer"),
        ("target", "gcp", "'local' or 'aws'"),
        ("mlImage", "ghcr.io/acme/ml:latest", "pinned by digest"),
        ("trafficWeights", [80, 10, 0], "sum to 100"),
        ("trafficWeights", [100], "one weight per entry"),
        ("servingVariants", ["blue", "green", "shadow"], "must include 'champion'"),
        ("driftSchedule", "hourly", "cron"),
        ("namespace", "MLOps", "DNS label"),
        ("cacheNodes", "1", "at least 2 cache nodes"),
        ("nodeDesiredSize", "99", "between nodeMinSize and nodeMaxSize"),
    ],
)
def test_bad_value_names_the_key(key, value, message) -> None:
    overrides = {key: value}
    if key == "cacheNodes":
        overrides["dbMultiAz"] = "true"
    with pytest.raises(UserError) as caught:
        config.parse(_raw(**overrides))
    line = caught.value.line()
    assert f"mlops:{key}" in line and message in line and "\n" not in line


def test_missing_required_key_is_named() -> None:
    raw = _raw()
    del raw["owner"]
    with pytest.raises(UserError, match=r"mlops:owner: is required"):
        config.parse(raw)


def test_aws_needs_a_region() -> None:
    raw = _raw()
    del raw["region"]
    with pytest.raises(UserError, match=r"aws:region"):
        config.parse(raw)


def test_render_fails_before_any_resource(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "stacks").mkdir(parents=True)
    shutil.copy(render.ROOT / "Pulumi.yaml", root)
    (root / "infra").symlink_to(render.ROOT / "infra")
    stack = (render.ROOT / "stacks" / "Pulumi.local.yaml").read_text()
    (root / "stacks" / "Pulumi.local.yaml").write_text(stack + "  mlops:servingReplicas: 0\n")
    with pytest.raises(UserError, match="mlops:servingReplicas"):
        render.render("local", root / "out", root=root)
    assert not (root / "out").exists()
