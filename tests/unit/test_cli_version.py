"""`mlops --version` prints the installed package's version and exits 0."""

from __future__ import annotations

from importlib.metadata import version

from typer.testing import CliRunner

from ml.cli.main import app


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"mlops {version('mlops-blueprint')}"


def test_bentoml_does_not_silently_replace_a_bad_worker_count() -> None:
    """`bentoml serve` imports the service module; a bad count stops it, naming the variable."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "MLOPS_SERVING_WORKERS": "abc"}
    result = subprocess.run(
        [sys.executable, "-c", "import ml.serve.service"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert "bad setting MLOPS_SERVING_WORKERS" in result.stderr
