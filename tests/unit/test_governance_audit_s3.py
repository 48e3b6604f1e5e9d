"""The audit log of record lives in the reports bucket, so every Job sees the same chain."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from contract.objectstore import AUDIT_HEAD_KEY, AUDIT_LOG_KEY
from ml.governance import audit

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_monitor_windows import reports, s3_endpoint
except ImportError:  # pragma: no cover
    from tests.unit.test_monitor_windows import reports, s3_endpoint  # noqa: F401


@pytest.fixture
def pod(reports, tmp_path, monkeypatch):
    """A fresh pod: its own empty /tmp (the default local path), the shared bucket."""

    def new_pod(name: str):
        folder = tmp_path / name
        monkeypatch.setattr(audit, "default_path", lambda: folder / "audit" / "audit.jsonl")
        return folder

    return new_pod


def test_appends_from_separate_pods_extend_one_chain(reports, pod):
    pod("register-job")
    audit.append("register", "credit-risk/1", "svc-pipeline")
    pod("reviewer-job")
    audit.append("approve", "credit-risk/1", "alice")
    pod("verify-job")

    assert [e["action"] for e in audit.read()] == ["register", "approve"]
    assert audit.verify().summary() == "audit log intact: 2 entries, hash chain verified"
    assert reports.exists(AUDIT_LOG_KEY) and reports.exists(AUDIT_HEAD_KEY)


def test_tampering_in_the_bucket_is_detected_by_verify_log(reports, pod):
    from ml.cli.governance import app

    pod("a")
    for action in ("register", "approve", "promote"):
        audit.append(action, "credit-risk/1", "alice")
    lines = reports.get_bytes(AUDIT_LOG_KEY).decode().splitlines()
    reports.put_bytes(AUDIT_LOG_KEY, ("\n".join([lines[0], lines[2]]) + "\n").encode())
    pod("b")

    result = CliRunner().invoke(app, ["verify-log"])

    assert result.exit_code == 1
    assert "tampered at line 2" in result.output


def test_an_explicit_path_stays_local(reports, tmp_path):
    audit.append("register", "credit-risk/1", "bob", path=tmp_path / "local.jsonl")
    assert not reports.exists(AUDIT_LOG_KEY)
