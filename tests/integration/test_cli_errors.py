"""Every user mistake ends in one line on stderr, a non-zero exit code and no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def mlops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ml.cli.main", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["demo"], {"MLOPS_SEED": "-1"}, "MLOPS_SEED"),
        (["demo"], {"MLOPS_MODEL_NAME": "bad name!"}, "MLOPS_MODEL_NAME"),
        (["infra", "render", "--stack", "nope", "--out", "/tmp/x"], {}, "nope"),
        (
            ["monitor", "drift", "--reference", "/no/such.parquet", "--current", "/no/c.parquet"],
            {},
            "/no/such.parquet",
        ),
        (["demo", "--customers", "5"], {}, "--customers"),
        (["demo", "--seed", "-1"], {}, "--seed"),
        (["serve", "start"], {"MLOPS_SERVING_WORKERS": "abc"}, "MLOPS_SERVING_WORKERS"),
        (["serve", "start"], {"MLOPS_POLICY_POLL_S": "-1"}, "MLOPS_POLICY_POLL_S"),
        (["status"], {"MLOPS_REQUIRE_APPROVAL": "maybe"}, "MLOPS_REQUIRE_APPROVAL"),
    ],
)
def test_user_errors_are_one_clear_line(args, env, expected):
    """Flags and environment alike: one line naming the value, exit code 2, no traceback."""
    result = mlops(*args, env=env)
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_an_unknown_command_is_one_line_pointing_at_help():
    result = mlops("nope")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: No such command 'nope'. — see 'mlops --help'"


@pytest.mark.parametrize(
    "env",
    [{"MLOPS_SERVING_WORKERS": "abc"}, {"MLOPS_LOG_BATCH_RECORDS": "0"}],
    ids=["workers", "log-batch"],
)
def test_the_bentoml_entry_point_names_a_bad_setting_in_one_line(env, tmp_path):
    """`bentoml serve` (what a pod runs) validates the same settings object as `mlops`."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("bentoml")), "serve",
         "ml.serve.service:CreditRiskService", "--working-dir", str(ROOT), "--port", "3999"],
        capture_output=True, text=True, cwd=tmp_path, env={**os.environ, **env}, timeout=300,
    )  # fmt: skip
    lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and next(iter(env)) in lines[0], result.stderr
