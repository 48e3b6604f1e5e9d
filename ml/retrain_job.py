"""Start a retraining Job in Kubernetes from the TrainingPipeline's template.

The TrainingPipeline component stores a complete ``batch/v1`` Job (with ``generateName``) in a
ConfigMap that the drift monitor mounts; on drift the monitor fills in why and creates it.
Kubernetes is the engine: nothing here schedules, retries or waits — the Job's own spec does.
The monitor's ServiceAccount may only create and read Jobs in its namespace (see the
component's Role).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from ml.errors import ServiceUnavailable, UserError

REASON_ANNOTATION = "mlops.io/retrain-reason"


def job_from_template(template_path: Path, reason: str) -> dict[str, Any]:
    """The Job to create: the template with the reason as annotation and ``--reason`` arg."""
    if not template_path.is_file():
        raise UserError(
            f"no retrain Job template at {template_path}",
            "mount the pipeline's job-template ConfigMap or unset MLOPS_RETRAIN_JOB_TEMPLATE",
        )
    template = json.loads(template_path.read_text())
    if template.get("kind") != "Job":
        raise UserError(f"{template_path} is not a Job manifest", "regenerate it with pulumi up")
    job = copy.deepcopy(template)
    job["metadata"].setdefault("annotations", {})[REASON_ANNOTATION] = reason[:1000]
    for container in job["spec"]["template"]["spec"]["containers"]:
        container["args"] = [*container.get("args", []), "--reason", reason[:1000]]
    return job


def create_job(job: dict[str, Any], namespace: str) -> str:
    """Create ``job`` with the pod's in-cluster credentials; return the new Job's name."""
    from kubernetes import client, config
    from kubernetes.client.exceptions import ApiException

    try:
        config.load_incluster_config()
    except config.ConfigException:
        raise ServiceUnavailable(
            "not running in a Kubernetes pod (no in-cluster credentials)",
            "run the drift monitor in the cluster, or unset MLOPS_RETRAIN_JOB_TEMPLATE",
        ) from None
    try:
        created = client.BatchV1Api().create_namespaced_job(namespace, job, _request_timeout=10)
    except ApiException as error:
        raise ServiceUnavailable(
            f"the Kubernetes API refused the retrain Job ({error.status} {error.reason})",
            "check the monitor's Role allows creating batch/jobs in this namespace",
        ) from None
    return created.metadata.name
