"""The MLflow export that destroy runs first, against a real (SQLite-backed) tracking store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts.export import export_mlflow


@pytest.mark.slow
def test_export_mlflow_writes_runs_registry_and_artifacts(tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("credit", artifact_location=str(tmp_path / "artifacts"))
    run = client.create_run(exp)
    client.log_param(run.info.run_id, "alpha", "0.1")
    client.log_metric(run.info.run_id, "auc", 0.81)
    client.log_text(run.info.run_id, "card", "model/card.md")
    client.set_terminated(run.info.run_id)
    client.create_registered_model("credit-model")
    version = client.create_model_version(
        "credit-model", f"runs:/{run.info.run_id}/model", run.info.run_id
    )
    client.set_registered_model_alias("credit-model", "champion", version.version)
    assert mlflow.get_tracking_uri()  # the export must not depend on the global URI

    files = export_mlflow(uri, tmp_path / "out")

    assert {f.name for f in files} == {"experiments.json", "runs.jsonl", "registry.json"}
    runs = [
        json.loads(line) for line in (tmp_path / "out" / "runs.jsonl").read_text().splitlines()
    ]
    assert [r["info"]["run_id"] for r in runs] == [run.info.run_id]
    assert runs[0]["data"]["params"] == {"alpha": "0.1"}
    [model] = json.loads((tmp_path / "out" / "registry.json").read_text())
    assert (
        model["aliases"] == {"champion": 1} and model["versions"][0]["run_id"] == run.info.run_id
    )
    card = tmp_path / "out" / "artifacts" / run.info.run_id / "model" / "card.md"
    assert card.read_text() == "card"
