"""The program renders for every stack, and `mlops infra render` writes what it says."""

from __future__ import annotations

import json
import sys

import pytest
import yaml

from infra.render import SECRET

EXPECTED_LOCAL = {
    # kind: names that must exist (the "Done when" list for the local stack)
    "Deployment": {"mlflow-server", "feast-server", "serving"},
    "CronJob": {"feast-materialize", "monitoring-drift", "pipeline-retrain"},
    "PrometheusRule": {"monitoring-rules"},
}


def test_program_renders(rendered) -> None:
    inventory = json.loads((rendered.out / "inventory.json").read_text())
    assert len(inventory) == len(rendered.resources) > 50
    assert all(set(r) >= {"type", "name", "parent", "inputs"} for r in inventory)
    manifests = sorted((rendered.out / "manifests").glob("*.yaml"))
    assert len(manifests) == len(rendered.objects)
    for path in manifests:
        docs = list(yaml.safe_load_all(path.read_text()))
        assert len(docs) == 1 and {"apiVersion", "kind", "metadata"} <= set(docs[0])


def test_components_are_parents_of_their_children(rendered) -> None:
    names = {r.name: r for r in rendered.resources}
    components = [r for r in rendered.resources if r.type.startswith("mlops:index:")]
    assert {c.type for c in components} >= {
        f"mlops:index:{c}"
        for c in (
            "FeatureStore",
            "ExperimentTracking",
            "ModelServing",
            "Monitoring",
            "TrainingPipeline",
            "Governance",
            "Images",
        )
    }
    for r in rendered.resources:
        if r.parent and names[r.parent].type.startswith("mlops:index:"):
            assert r.name.startswith(f"{r.parent}-"), f"{r.name} not named after {r.parent}"


def test_secrets_are_redacted(rendered) -> None:
    text = (rendered.out / "inventory.json").read_text()
    for r in rendered.of_type("random:index/randomPassword:RandomPassword"):
        from infra.render import _fake

        assert _fake(r.name, r.inputs["length"]) not in text, r.name
    for secret in rendered.kinds("Secret"):
        assert all(v == SECRET for v in secret.get("stringData", {}).values())


def test_local_stack_contains_the_platform(local) -> None:
    for kind, names in EXPECTED_LOCAL.items():
        assert names <= {o["metadata"]["name"] for o in local.kinds(kind)}, kind
    assert local.kinds("NetworkPolicy")
    dashboards = [
        c for c in local.kinds("ConfigMap") if c["metadata"]["labels"].get("grafana_dashboard")
    ]
    assert dashboards, "no Grafana dashboard ConfigMaps"
    charts = {r.inputs["chart"] for r in local.of_type("kubernetes:helm.sh/v3:Release")}
    assert "kube-prometheus-stack" in charts


@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_aws_stacks_add_managed_services(stack, aws_dev, aws_prod) -> None:
    r = {"aws-dev": aws_dev, "aws-prod": aws_prod}[stack]
    types = {x.type for x in r.resources}
    assert {
        "aws:eks/cluster:Cluster",
        "aws:rds/instance:Instance",
        "aws:elasticache/replicationGroup:ReplicationGroup",
        "aws:s3/bucket:Bucket",
        "aws:ecr/repository:Repository",
    } <= types
    for kind, names in EXPECTED_LOCAL.items():
        assert names <= {o["metadata"]["name"] for o in r.kinds(kind)}, kind


def _cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from ml.cli.main import run

    monkeypatch.setattr(sys, "argv", ["mlops", "infra", "render", *args])
    code = 0
    try:
        run()
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_render_reports_where_and_how_many(tmp_path, monkeypatch, capsys, local) -> None:
    code, out, _ = _cli(monkeypatch, capsys, "--stack", "local", "--out", str(tmp_path))
    assert code == 0
    assert str(tmp_path) in out and f"{len(local.resources)} resources" in out
    assert (tmp_path / "inventory.json").exists()


def test_cli_unknown_stack_is_one_line_error(tmp_path, monkeypatch, capsys) -> None:
    code, _, err = _cli(monkeypatch, capsys, "--stack", "nope", "--out", str(tmp_path))
    assert code != 0
    assert err.strip().count("\n") == 0 and "unknown stack 'nope'" in err and "aws-dev" in err


def test_cli_cost_prices_each_resource_per_hour_in_the_stacks_region(monkeypatch, capsys) -> None:
    from ml.cli.main import run

    monkeypatch.setattr(sys, "argv", ["mlops", "infra", "cost", "--stack", "aws-dev"])
    try:
        run()
    except SystemExit as exit_:
        assert not exit_.code
    out = capsys.readouterr().out
    assert "On-demand eu-west-1 prices" in out and "| USD / hour | USD / month |" in out
    assert "EKS control plane 1.36" in out and "NAT gateway" in out
