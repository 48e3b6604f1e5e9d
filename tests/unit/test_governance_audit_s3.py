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


try:
    from test_governance_audit import _delete, _edit, _edit_and_rehash, _insert, _swap, _truncate
except ImportError:  # pragma: no cover
    from tests.unit.test_governance_audit import (
        _delete,
        _edit,
        _edit_and_rehash,
        _insert,
        _swap,
        _truncate,
    )

TAMPERING = [(_edit, 3), (_edit_and_rehash, 4), (_delete, 3), (_swap, 2), (_insert, 3),
             (_truncate, 5)]  # fmt: skip


@pytest.mark.parametrize("copy", ["local", "object store"])
@pytest.mark.parametrize(("tamper", "bad_line"), TAMPERING)
def test_verify_log_locates_tampering_in_either_copy(reports, pod, copy, tamper, bad_line):
    from ml.cli.governance import app

    for key in (AUDIT_LOG_KEY, AUDIT_HEAD_KEY):  # the bucket's name is cut short: may be reused
        if reports.exists(key):
            reports.delete(key)
    folder = pod("reviewer")
    for i in range(5):
        audit.append("approve", f"credit-risk/{i}", "bob", {"comment": f"ok {i}"})
    local = folder / "audit" / "audit.jsonl"
    lines = local.read_text() if copy == "local" else reports.get_bytes(AUDIT_LOG_KEY).decode()
    lines = lines.splitlines()
    tamper(lines)
    tampered = "\n".join(lines) + "\n"
    if copy == "local":
        local.write_text(tampered)
    else:
        reports.put_bytes(AUDIT_LOG_KEY, tampered.encode())

    result = CliRunner().invoke(app, ["verify-log"])

    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    bad = errors[0]
    assert f"tampered at line {bad_line}" in bad and f"({copy} " in bad
    other = "object store" if copy == "local" else "local"
    assert any("intact" in line and f"({other} " in line for line in result.output.splitlines())


def test_a_local_copy_that_is_not_a_prefix_of_the_bucket_is_reported(reports, pod):
    folder = pod("a")
    audit.append("register", "credit-risk/1", "svc-pipeline")
    audit.append("approve", "credit-risk/1", "bob")
    local = folder / "audit" / "audit.jsonl"
    mine = local.read_text()
    pod("b")
    audit.append("promote", "credit-risk/1", "carol")
    # A local log rebuilt consistently from its own first entry: valid on its own, but forked.
    forged = tmp_log = folder / "forged.jsonl"
    audit.append("register", "credit-risk/1", "mallory", path=tmp_log)
    local.write_text(forged.read_text())
    local.with_name(local.name + ".head").write_text(
        tmp_log.with_name(tmp_log.name + ".head").read_text()
    )
    results = audit.verify_copies(local)
    (where,) = [w for w in results if w.startswith("local")]
    assert not results[where].ok and results[where].bad_line == 1
    assert "differs from the object store" in results[where].reason
    assert mine  # the honest local copy before the forgery was a prefix
