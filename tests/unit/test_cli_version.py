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


def test_help_pages_show_no_type_for_flags() -> None:
    """A flag takes no value: no ``<bool>`` after it, on the root and on a command's page."""
    for args in (["--help"], ["up", "--help"], ["monitor", "drift", "--help"]):
        result = CliRunner().invoke(app, args, env={"COLUMNS": "120"})
        assert result.exit_code == 0, args
        assert "<bool>" not in result.output, args
        if args[0] == "monitor":
            assert "<path>" in result.output  # options that take a value keep their type
