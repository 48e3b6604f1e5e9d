"""The embedded platform gives each lifecycle step what its Job gets (``ml.embedded``).

The demo runs the Jobs' commands with the environment :meth:`EmbeddedPlatform.env` builds; a
variable a step needs that the embedded platform does not give, or one it gives that nothing
reads, fails here, the same rules ``test_contract_env`` applies to the rendered pods.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from code_env import read_by_code
from test_contract_env import REQUIRED, missing, unread

from contract import commands, env, objectstore
from ml.embedded import FEATURE_REPO, EmbeddedPlatform
from ml.settings import Settings
from ml.tracking import MlflowServer

# The lifecycle steps the demo runs as subprocesses (ml/demo.py), with the Jobs' commands.
DEMO_STEPS = (commands.INGEST, commands.MATERIALIZE, commands.TRAIN, commands.DRIFT,
              commands.RETRAIN)  # fmt: skip
# The embedded platform has no Pushgateway: steps push only when the variable is set.
NOT_EMBEDDED = {env.PUSHGATEWAY_URL}


@pytest.fixture
def platform(tmp_path: Path) -> EmbeddedPlatform:
    settings = Settings(build_dir=tmp_path)
    platform = EmbeddedPlatform(settings, tmp_path, MlflowServer(tmp_path / "mlflow", 5999))
    platform.buckets = {role: f"mlops-{role}" for role in objectstore.BUCKETS}
    platform.object_store_url = "http://127.0.0.1:1"
    return platform


@pytest.mark.parametrize("command", DEMO_STEPS, ids=lambda c: " ".join(c))
def test_each_step_gets_what_its_job_requires(platform, command) -> None:
    assert command in REQUIRED  # the Job's requirements are the ones checked
    assert set(missing(list(command), set(platform.env()))) <= NOT_EMBEDDED


def test_every_mlops_variable_the_platform_gives_is_read(platform) -> None:
    assert unread(list(platform.env()), read_by_code()) == []


def test_the_steps_use_the_images_feast_repository() -> None:
    assert (FEATURE_REPO / "repo.py").is_file()
    assert not (FEATURE_REPO / "feature_store.yaml").exists()  # the config is given apart


def test_the_demo_runs_the_jobs_commands() -> None:
    """Every step command in the demo's source is a contract command (no private variants)."""
    source = (Path(__file__).resolve().parents[2] / "ml" / "demo.py").read_text()
    for name in ("INGEST", "MATERIALIZE", "TRAIN", "DRIFT", "RETRAIN"):
        assert f"commands.{name}" in source, name
    assert '"mlops", "pipeline"' not in source and '"mlops", "monitor"' not in source
