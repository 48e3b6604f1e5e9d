"""`mlops monitor drift`: verdict, outputs, and one-line errors without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from ml.cli import monitor
from ml.data.generate import Drift, sample_window
from ml.errors import ServiceUnavailable, UserError

# Run the real entry point, registering the group if main.py does not do it yet.
_MAIN = """
import sys
from ml.cli import main, monitor
if "monitor" not in [g.name for g in main.app.registered_groups]:
    main.app.add_typer(monitor.app, name="monitor")
sys.argv = ["mlops", *sys.argv[1:]]
main.console()
"""


@pytest.fixture(scope="module")
def windows(tmp_path_factory):
    folder = tmp_path_factory.mktemp("windows")
    reference, current = folder / "reference.parquet", folder / "current.csv"
    sample_window(1500, seed=21).to_parquet(reference)
    sample_window(800, seed=22, drift=Drift("covariate", 1.0)).to_csv(current, index=False)
    return reference, current


def _app() -> typer.Typer:
    root = typer.Typer()
    root.add_typer(monitor.app, name="monitor")
    return root


def test_drift_prints_a_verdict_and_writes_outputs(windows, tmp_path):
    reference, current = windows
    args = ["monitor", "drift", "--reference", str(reference), "--current", str(current)]
    out = tmp_path / "drift.json"
    result = CliRunner().invoke(_app(), [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("DRIFT") and result.output.count("\n") == 1
    assert json.loads(out.read_text())["dataset_drift"] is True


def test_unreachable_pushgateway_is_a_user_error(windows):
    reference, current = windows
    args = ["monitor", "drift", "--reference", str(reference), "--current", str(current)]
    result = CliRunner().invoke(_app(), [*args, "--push-gateway", "127.0.0.1:9"])
    assert isinstance(result.exception, ServiceUnavailable)
    assert "Pushgateway" in str(result.exception)


def test_missing_column_is_a_user_error(windows, tmp_path):
    reference, _ = windows
    current = tmp_path / "current.csv"
    sample_window(200, seed=23).drop(columns=["utilization"]).to_csv(current, index=False)
    args = ["monitor", "drift", "--reference", str(reference), "--current", str(current)]
    result = CliRunner().invoke(_app(), args)
    assert isinstance(result.exception, UserError)
    assert "utilization" in result.exception.line() and "\n" not in result.exception.line()


def test_missing_file_is_one_line_without_traceback(windows, tmp_path):
    reference, _ = windows
    args = ["monitor", "drift", "--reference", str(reference), "--current", str(tmp_path / "x")]
    run = subprocess.run(
        [sys.executable, "-c", _MAIN, *args], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no such file"), run.stderr
    assert "Traceback" not in run.stderr
