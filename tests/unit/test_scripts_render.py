"""The scripts on the real offline renders of the committed stacks (``mlops infra render``)."""

from __future__ import annotations

import json

import pytest

from scripts import cost, diagram, document

STACKS = ("aws-dev", "aws-prod")


@pytest.fixture(scope="module")
def inventories(tmp_path_factory) -> dict[str, list[dict]]:
    """``inventory.json`` of each stack, written by the same code ``mlops infra render`` runs
    (in-process: a subprocess per stack would cost an interpreter start and imports each)."""
    from infra.render import render

    root = tmp_path_factory.mktemp("render")
    for stack in STACKS:
        render(stack, root / stack)
    return {s: json.loads((root / s / "inventory.json").read_text()) for s in STACKS}


@pytest.mark.slow
@pytest.mark.parametrize("stack", ["aws-dev", "aws-prod"])
def test_every_priced_resource_of_the_aws_stacks_has_a_price(inventories, stack) -> None:
    est = cost.estimate(inventories[stack])  # raises on a class missing from prices.yaml
    items = {line.type for line in est.lines}
    assert {
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:rds/instance:Instance",
    } <= items
    assert any("ElastiCache" in t or "elasticache" in t for t in items)


@pytest.mark.slow
def test_prod_costs_more_than_dev_and_runs_multi_az(inventories) -> None:
    dev, prod = (cost.estimate(inventories[s]) for s in ("aws-dev", "aws-prod"))
    assert 0 < dev.total < prod.total
    assert any("Multi-AZ" in line.item for line in prod.lines)


@pytest.mark.slow
@pytest.mark.parametrize("stack", STACKS)
def test_diagram_has_a_box_per_component(inventories, stack) -> None:
    inventory = inventories[stack]
    components = {r["name"] for r in inventory if r["type"].startswith("mlops:")}
    dot = diagram.to_dot(inventory, stack)
    assert dot.count("subgraph cluster_") == len(components) >= 5


@pytest.mark.slow
def test_document_offline_from_the_real_render(inventories, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(diagram.shutil, "which", lambda _name: None)
    folder = document.document(
        "aws-dev",
        inventory=inventories["aws-dev"],
        stack=None,
        out_root=tmp_path,
        out=lambda _l: None,
    )
    assert {"cost.md", "architecture.md", "inventory.json"} <= {p.name for p in folder.iterdir()}


@pytest.mark.slow
def test_destroy_exports_from_the_feast_deployment_the_stack_creates(inventories) -> None:
    from scripts.export import DEFAULT_FEAST_DEPLOYMENT, DEFAULT_NAMESPACE

    deployments = {
        (r["inputs"]["metadata"].get("namespace"), r["inputs"]["metadata"]["name"])
        for r in inventories["aws-dev"]
        if r["type"] == "kubernetes:apps/v1:Deployment"
    }
    assert (DEFAULT_NAMESPACE, DEFAULT_FEAST_DEPLOYMENT) in deployments
