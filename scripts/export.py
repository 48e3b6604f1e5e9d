"""Export what a stack must not lose before it is destroyed: MLflow runs, the model registry,
run artifacts, and the Feast registry.

MLflow is read with its client against the stack's tracking URI (the ``mlflowTrackingUri``
output ``mlflowUrl``, or ``--tracking-uri`` when the server is only reachable through
``kubectl port-forward``); basic-auth credentials come from ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD``. The Feast registry is dumped with ``feast registry-dump`` run
inside the feature-server Deployment (``kubectl exec``), where the registry database is
reachable. Layout::

    DIR/mlflow/experiments.json  runs.jsonl  registry.json  artifacts/<run_id>/...
    DIR/feast/registry.json
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ml.errors import ServiceUnavailable, UserError
from scripts import workflow

TRACKING_URI_OUTPUTS = ("mlflowUrl", "mlflowTrackingUri")  # infra/stack.py exports mlflowUrl
NAMESPACE_OUTPUTS = ("namespace",)
FEAST_DEPLOYMENT_OUTPUTS = ("feastDeployment",)
DEFAULT_NAMESPACE = "mlops"
DEFAULT_FEAST_DEPLOYMENT = "feast-server"  # the FeatureStore component's Deployment


def _first(outputs: dict[str, Any], keys: tuple[str, ...], default: Any = None) -> Any:
    return next((outputs[k] for k in keys if outputs.get(k)), default)


def export_mlflow(tracking_uri: str, out_dir: Path, artifacts: bool = True) -> list[Path]:
    """Every experiment, run (params, metrics, tags) and registered model version, as JSON,
    plus each run's artifacts. Returns the files written."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    # Both URIs explicitly: the registry URI would otherwise follow the process-wide one.
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        experiments = client.search_experiments(view_type=ViewType.ALL)
    except Exception as error:  # the client raises many types for "cannot reach the server"
        raise ServiceUnavailable(
            f"cannot read MLflow at {tracking_uri}: {type(error).__name__}",
            "check the URI (kubectl port-forward svc/<mlflow> 5000) and MLFLOW_TRACKING_* env",
        ) from None
    written = [_dump(out_dir / "experiments.json", [_experiment(e) for e in experiments])]
    runs_file = out_dir / "runs.jsonl"
    with runs_file.open("w") as fh:
        for exp in experiments:
            for run in _all_runs(client, exp.experiment_id):
                fh.write(json.dumps(run.to_dictionary(), default=str) + "\n")
                if artifacts:
                    _download_artifacts(tracking_uri, run.info.run_id, out_dir / "artifacts")
    written.append(runs_file)
    written.append(_dump(out_dir / "registry.json", _registry(client)))
    return written


def _experiment(exp) -> dict:
    return {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": exp.lifecycle_stage,
        "tags": exp.tags,
    }


def _all_runs(client, experiment_id: str):
    from mlflow.entities import ViewType

    token = None
    while True:
        page = client.search_runs(
            [experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token
        )
        yield from page
        token = page.token
        if not token:
            return


def _download_artifacts(tracking_uri: str, run_id: str, root: Path) -> None:
    import mlflow.artifacts

    dest = root / run_id
    dest.mkdir(parents=True, exist_ok=True)
    mlflow.artifacts.download_artifacts(
        run_id=run_id, dst_path=str(dest), tracking_uri=tracking_uri
    )


def _registry(client) -> list[dict]:
    models = []
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name='{model.name}'")
        models.append(
            {
                "name": model.name,
                "description": model.description,
                "tags": model.tags,
                "aliases": model.aliases,
                "versions": [
                    {
                        "version": v.version,
                        "run_id": v.run_id,
                        "source": v.source,
                        "status": v.status,
                        "tags": v.tags,
                        "aliases": list(getattr(v, "aliases", []) or []),
                        "description": v.description,
                    }
                    for v in versions
                ],
            }
        )
    return models


def export_feast(
    namespace: str,
    deployment: str,
    out_dir: Path,
    run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
) -> Path:
    """``feast registry-dump`` inside the feature-server pod, saved as ``registry.json``."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise UserError("kubectl is not on PATH", "install kubectl and point it at the cluster")
    cmd = [
        kubectl,
        "-n",
        namespace,
        "exec",
        f"deploy/{deployment}",
        "--",
        "feast",
        "registry-dump",
    ]
    result = run(cmd, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise ServiceUnavailable(
            f"feast registry-dump in {namespace}/{deployment} failed: "
            f"{(result.stderr or 'no output').strip().splitlines()[-1]}",
            "check the feature server is running (kubectl get deploy -n " + namespace + ")",
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "registry.json"
    path.write_text(result.stdout)
    return path


def export_stack_state(
    stack: workflow.StackLike, out_dir: Path, tracking_uri: str | None = None
) -> list[Path]:
    """Export MLflow and Feast state of ``stack`` under ``out_dir``.

    Raises:
        UserError: the tracking URI is unknown, a tool is missing, or a service is unreachable.
    """
    outputs = workflow.plain_outputs(stack, reveal=True)
    uri = tracking_uri or _first(outputs, TRACKING_URI_OUTPUTS)
    if not uri:
        raise UserError(
            f"stack {stack.name} has no MLflow tracking URI output",
            "pass --tracking-uri (e.g. http://127.0.0.1:5000 after kubectl port-forward)",
        )
    files = export_mlflow(uri, out_dir / "mlflow")
    namespace = _first(outputs, NAMESPACE_OUTPUTS, DEFAULT_NAMESPACE)
    deployment = _first(outputs, FEAST_DEPLOYMENT_OUTPUTS, DEFAULT_FEAST_DEPLOYMENT)
    files.append(export_feast(namespace, deployment, out_dir / "feast"))
    return files


def _dump(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
