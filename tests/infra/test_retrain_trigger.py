"""The drift monitor turns the rendered Job template into a valid retrain Job."""

from __future__ import annotations

import json

import kubernetes_validate
import pytest

from ml.errors import UserError
from ml.retrain_job import REASON_ANNOTATION, job_from_template


@pytest.fixture
def template_file(local, tmp_path):
    (config_map,) = [
        m for m in local.kinds("ConfigMap") if m["metadata"]["name"].endswith("job-template")
    ]
    path = tmp_path / "job.json"
    path.write_text(config_map["data"]["job.json"])
    return path


def test_job_from_rendered_template_is_valid_and_says_why(template_file):
    job = job_from_template(template_file, "drift monitor: DRIFT in utilization")
    assert job["metadata"]["annotations"][REASON_ANNOTATION].startswith("drift monitor")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["pipeline", "retrain"]
    assert container["args"][-2:] == ["--reason", "drift monitor: DRIFT in utilization"]
    kubernetes_validate.validate(job, "1.32.0", strict=True)
    assert json.loads(template_file.read_text()) != job  # the template itself is untouched


def test_missing_template_is_a_clear_error(tmp_path):
    with pytest.raises(UserError, match="no retrain Job template"):
        job_from_template(tmp_path / "absent.json", "drift")
