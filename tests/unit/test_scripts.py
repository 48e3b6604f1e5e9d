"""Build-document-delete scripts, on the parts that need no Pulumi CLI, cluster or cloud."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ml.errors import ServiceUnavailable, UserError
from scripts import cost, destroy, diagram, document, export, up, workflow
from scripts.leftovers import Cleanup

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_scripts_support import AWS_DEV_INVENTORY, AWS_DEV_MONTHLY_USD, FakeStack, Update
except ImportError:  # pragma: no cover
    from tests.unit.test_scripts_support import (
        AWS_DEV_INVENTORY,
        AWS_DEV_MONTHLY_USD,
        FakeStack,
        Update,
    )

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _inventory() -> list[dict]:
    return copy.deepcopy(AWS_DEV_INVENTORY)


def _find(inventory: list[dict], name: str) -> dict:
    return next(r for r in inventory if r["name"] == name)


# --- cost -----------------------------------------------------------------------------------


def test_cost_of_the_sample_aws_dev_inventory() -> None:
    est = cost.estimate(_inventory())
    assert est.total == pytest.approx(AWS_DEV_MONTHLY_USD)
    assert {n for n, _ in est.usage_priced} == {"aws-artifacts", "aws-features", "aws-ml"}


def test_multi_az_doubles_the_database() -> None:
    inventory = _inventory()
    _find(inventory, "aws-postgres")["inputs"]["multiAz"] = True
    assert cost.estimate(inventory).total == pytest.approx(AWS_DEV_MONTHLY_USD + 47.45 + 2.30)


def test_python_style_input_names_are_understood() -> None:
    inventory = _inventory()
    rds = _find(inventory, "aws-postgres")
    rds["inputs"] = {"instance_class": "db.t4g.medium", "allocated_storage": 20}
    assert cost.estimate(inventory).total == pytest.approx(AWS_DEV_MONTHLY_USD)


def test_an_unpriced_class_is_an_error_naming_it() -> None:
    inventory = _inventory()
    _find(inventory, "aws-redis")["inputs"]["nodeType"] = "cache.x9.huge"
    with pytest.raises(UserError, match=r"cache\.x9\.huge.*aws-redis"):
        cost.estimate(inventory)


def test_price_table_states_date_source_and_the_same_items_per_region() -> None:
    prices = cost.load_prices()
    assert prices["source"] and {"us-east-1", "eu-west-1"} <= set(prices["regions"])
    datetime.strptime(str(prices["date"]), "%Y-%m-%d")
    items = {region: set(table) for region, table in prices["regions"].items()}
    assert len({frozenset(keys) for keys in items.values()}) == 1, items


def test_the_estimate_uses_the_stacks_region() -> None:
    inventory = _inventory()
    _find(inventory, "default_7_51_1")["inputs"]["region"] = "eu-west-1"
    est = cost.estimate(inventory)
    assert est.region == "eu-west-1"
    assert est.total > AWS_DEV_MONTHLY_USD  # Ireland costs more than N. Virginia
    nodes = next(ln for ln in est.lines if ln.item == "m6i.large node")
    assert nodes.monthly_usd == pytest.approx(2 * 730 * 0.107)
    _find(inventory, "default_7_51_1")["inputs"]["region"] = "ap-south-2"
    with pytest.raises(UserError, match="no prices for region ap-south-2"):
        cost.estimate(inventory)


def test_a_version_past_standard_support_is_priced_as_extended() -> None:
    from datetime import date

    inventory = _inventory()
    _find(inventory, "aws-eks")["inputs"]["version"] = "1.32"
    (eks,) = [ln for ln in cost.estimate(inventory).lines if ln.resource == "aws-eks"]
    assert "extended support" in eks.item and eks.monthly_usd == pytest.approx(0.60 * 730)
    _find(inventory, "aws-eks")["inputs"]["version"] = "1.36"
    (eks,) = [
        ln
        for ln in cost.estimate(inventory, today=date(2027, 8, 3)).lines
        if ln.resource == "aws-eks"
    ]
    assert "extended support" in eks.item  # the day after 1.36 leaves standard support


def test_markdown_shows_total_date_and_what_is_left_out() -> None:
    text = cost.to_markdown(cost.estimate(_inventory()), "aws-dev")
    assert f"**{AWS_DEV_MONTHLY_USD:,.2f}**" in text
    assert f"**{AWS_DEV_MONTHLY_USD / 730:,.4f}**" in text and "USD / hour" in text
    assert str(cost.load_prices()["date"]) in text
    assert "Billed by usage" in text and "data transfer" in text


# --- diagram --------------------------------------------------------------------------------


def test_diagram_nodes_group_by_component_and_collapse_repeats() -> None:
    nodes = diagram.nodes(_inventory())
    labels = [n.label for n in nodes]
    assert not any("Stack" in label or "providers" in label for label in labels)
    components = {n.component for n in nodes if n.component}
    assert components == {"aws", "mlflow", "serving"}
    assert "ec2/Subnet ×4" in labels and "Deployment ×4" in labels  # > COLLAPSE_OVER
    assert next(n for n in nodes if n.label.startswith("mlflow-server\nDeployment")).parent == (
        "mlflow"
    )
    helm = next(n for n in nodes if n.label.startswith("kube-prometheus-stack"))
    assert helm.parent is None  # parented to the stack: top level


def test_diagram_accepts_urn_parents() -> None:
    inventory = _inventory()
    for r in inventory:
        if r["parent"] == "mlflow":
            r["parent"] = "urn:pulumi:aws-dev::mlops::mlops:index:ExperimentTracking::mlflow"
    nodes = diagram.nodes(inventory)
    assert next(n for n in nodes if n.label.startswith("mlflow-server")).parent == "mlflow"


def test_dot_has_one_cluster_per_component_and_is_balanced() -> None:
    dot = diagram.to_dot(_inventory(), "aws-dev")
    assert dot.count("subgraph cluster_") == 3
    assert dot.count("{") == dot.count("}")
    assert 'label="aws-dev"' in dot


def test_mermaid_fallback_when_dot_is_missing(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(diagram.shutil, "which", lambda _name: None)
    [path] = diagram.write(_inventory(), "aws-dev", tmp_path)
    text = path.read_text()
    assert path.name == "architecture.md" and "```mermaid" in text
    assert text.count("subgraph ") == 3 == text.count("\n  end") + text.count("\n    end")


# --- up -------------------------------------------------------------------------------------


class Recorder:
    def __init__(self, stack: FakeStack, answer: bool = True) -> None:
        self.stack, self.answer, self.lines = stack, answer, []

    def out(self, line: str) -> None:
        self.lines.append(line)
        self.stack.calls.append(("print", line.splitlines()[0]))

    def confirm(self, question: str) -> bool:
        self.stack.calls.append(("confirm", question))
        return self.answer


def test_up_shows_the_estimate_and_asks_before_creating_anything() -> None:
    stack = FakeStack("aws-dev")
    rec = Recorder(stack)
    up.up(
        stack,
        owner="ana@example.com",
        ttl_hours=8,
        inventory=_inventory(),
        confirm=rec.confirm,
        out=rec.out,
        now=NOW,
    )
    kinds = [c[0] for c in stack.calls]
    assert kinds.index("print") < kinds.index("confirm") < kinds.index("set_config")
    assert kinds.index("set_config") < kinds.index("up")
    assert stack.calls[0] == ("print", "# Cost estimate: aws-dev")
    assert f"${AWS_DEV_MONTHLY_USD:,.2f}/month" in next(
        c[1] for c in stack.calls if c[0] == "confirm"
    )
    assert ("set_config", "mlops:owner", "ana@example.com") in stack.calls
    assert ("set_config", "mlops:expiresAt", "2026-11-22T20:00:00Z") in stack.calls


def test_up_declined_changes_nothing() -> None:
    stack = FakeStack("aws-dev")
    rec = Recorder(stack, answer=False)
    with pytest.raises(UserError, match="not created"):
        up.up(
            stack, owner="o", ttl_hours=8, inventory=_inventory(), confirm=rec.confirm, out=rec.out
        )
    assert not [c for c in stack.calls if c[0] in {"set_config", "up"}]


def test_up_local_has_no_estimate_and_no_ttl_means_no_expiry() -> None:
    stack = FakeStack("local")
    rec = Recorder(stack)
    up.up(stack, owner="o", ttl_hours=0, inventory=None, confirm=rec.confirm, out=rec.out)
    assert [c for c in stack.calls if c[0] != "print"] == [
        ("set_config", "mlops:owner", "o"),
        ("up",),
    ]


# --- destroy --------------------------------------------------------------------------------


def _exporter(stack: FakeStack, fail: bool = False):
    def run(s, out_dir: Path) -> list[Path]:
        s.calls.append(("export", out_dir.name))
        if fail:
            raise ServiceUnavailable("cannot read MLflow", "port-forward it")
        return [out_dir / "mlflow" / "runs.jsonl"]

    return run


def _destroy(stack: FakeStack, tmp_path: Path, allow: bool = False, fail: bool = False) -> None:
    destroy.destroy(
        stack,
        allow_protected=allow,
        exporter=_exporter(stack, fail),
        export_dir=tmp_path / "exp",
        out=lambda _line: None,
    )


def test_destroy_exports_before_destroying_then_verifies(tmp_path: Path) -> None:
    stack = FakeStack("aws-dev")
    _destroy(stack, tmp_path)
    assert stack.calls == [("export", "exp"), ("destroy",), ("export_stack",)]


@pytest.mark.parametrize(
    "stack",
    [FakeStack("aws-prod"), FakeStack("aws-dev", config={"mlops:protect": "true"})],
    ids=["by-name", "by-config"],
)
def test_protected_stack_is_refused_without_the_flag(stack: FakeStack, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"protected.*--i-know-this-is-protected"):
        _destroy(stack, tmp_path)
    assert stack.calls == []


def test_protected_stack_with_the_flag_exports_then_unprotects_then_destroys(
    tmp_path: Path,
) -> None:
    stack = FakeStack("aws-prod")
    _destroy(stack, tmp_path, allow=True)
    assert stack.calls == [
        ("export", "exp"),
        ("set_config", "mlops:protect", "false"),
        ("set_config", "mlops:deletionProtection", "false"),
        ("up",),
        ("destroy",),
        ("export_stack",),
    ]


def test_failed_export_destroys_nothing(tmp_path: Path) -> None:
    stack = FakeStack("aws-dev")
    with pytest.raises(ServiceUnavailable):
        _destroy(stack, tmp_path, fail=True)
    assert ("destroy",) not in stack.calls


def test_resources_left_after_destroy_are_an_error(tmp_path: Path) -> None:
    left = [{"type": "aws:rds/instance:Instance", "urn": "urn:pulumi:aws-dev::mlops::db"}]
    stack = FakeStack("aws-dev", left_after_destroy=left)
    with pytest.raises(UserError, match="1 resources are still in stack aws-dev"):
        _destroy(stack, tmp_path)


def test_main_passes_the_protected_flag(monkeypatch, tmp_path: Path) -> None:
    stack = FakeStack("aws-prod")
    monkeypatch.setattr(workflow, "open_stack", lambda name, create=False: stack)
    monkeypatch.setattr(destroy, "export_stack_state", lambda s, d, uri: [])
    swept: list[bool] = []
    monkeypatch.setattr(
        destroy, "aws_sweeper", lambda s, protected, out: swept.append(protected) or Cleanup()
    )
    with pytest.raises(UserError, match="protected"):
        destroy.main(["--stack", "aws-prod", "--export-dir", str(tmp_path)])
    destroy.main(
        ["--stack", "aws-prod", "--export-dir", str(tmp_path), "--i-know-this-is-protected"]
    )
    assert ("destroy",) in stack.calls
    assert swept == [True]  # the cloud is swept by tag, snapshotting first (protected)


# --- export ---------------------------------------------------------------------------------


def test_export_without_a_tracking_uri_says_how_to_give_one(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--tracking-uri"):
        export.export_stack_state(FakeStack("local"), tmp_path)


def test_feast_registry_dump_runs_in_the_feature_server(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(export.shutil, "which", lambda name: f"/usr/bin/{name}")
    seen = []

    def run(cmd, **kwargs):
        seen.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout='{"featureViews": []}', stderr="")

    path = export.export_feast("mlops", "feast-server", tmp_path, run=run)
    assert seen == [
        [
            "/usr/bin/kubectl",
            "-n",
            "mlops",
            "exec",
            "deploy/feast-server",
            "--",
            "feast",
            "registry-dump",
        ]
    ]
    assert path.read_text() == '{"featureViews": []}'


def test_feast_dump_failure_is_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(export.shutil, "which", lambda name: f"/usr/bin/{name}")

    def run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 1, stdout="", stderr="x\nError: pod not found")

    with pytest.raises(ServiceUnavailable, match="pod not found"):
        export.export_feast("mlops", "feast-server", tmp_path, run=run)


# --- document -------------------------------------------------------------------------------


def test_document_writes_a_dated_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(diagram.shutil, "which", lambda _name: None)
    stack = FakeStack(
        "aws-dev",
        outputs={"mlflowUrl": "http://mlflow", "grafanaAdminPassword": "s3cret"},
        history=[Update(datetime(2026, 11, 21, 12, 0, tzinfo=UTC))],
    )
    folder = document.document(
        "aws-dev",
        inventory=_inventory(),
        stack=stack,
        out_root=tmp_path,
        now=NOW,
        out=lambda _l: None,
    )
    assert folder == tmp_path / "2026-11-22-aws-dev"
    names = {p.name for p in folder.iterdir()}
    assert names == {
        "README.md",
        "inventory.json",
        "outputs.json",
        "state.json",
        "architecture.md",
        "cost.md",
        "alerts.md",
    }
    assert "s3cret" not in (folder / "outputs.json").read_text()
    so_far = round(AWS_DEV_MONTHLY_USD * 24 / 730, 2)
    assert f"${so_far:,.2f}" in (folder / "cost.md").read_text()


def test_document_offline_local_has_no_cost(tmp_path: Path) -> None:
    local = [r for r in _inventory() if not r["type"].startswith("aws:")]
    folder = document.document(
        "local", inventory=local, stack=None, out_root=tmp_path, now=NOW, out=lambda _l: None
    )
    assert not (folder / "cost.md").exists() and (folder / "inventory.json").exists()


# --- missing CLI ----------------------------------------------------------------------------


def test_missing_pulumi_cli_says_how_to_install_it() -> None:
    with pytest.raises(UserError, match=r"not on PATH.*get\.pulumi\.com"):
        workflow.require_pulumi_cli(which=lambda _name: None)


@pytest.mark.parametrize("script", ["up", "destroy", "document"])
def test_scripts_without_pulumi_print_one_line_and_exit_2(script: str, tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}  # no pulumi (nor anything else) on PATH
    result = subprocess.run(
        [sys.executable, "-m", f"scripts.{script}", "--stack", "aws-dev"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workflow.ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: the Pulumi CLI (`pulumi`) is not on PATH")
    assert len(result.stderr.strip().splitlines()) == 1
