"""`mlops docs publish`: the site is built from the cluster's facts and uploaded under site/."""

from __future__ import annotations

import json
from types import SimpleNamespace

from contract.objectstore import DRIFT_LATEST_KEY, DRIFT_PREFIX, SITE_PREFIX
from ml.governance import approvals, audit
from ml.governance.publish import publish, upload
from ml.settings import Settings

try:  # pytest's default "prepend" import mode, with or without packages under tests/
    from test_monitor_windows import reports, s3_endpoint
except ImportError:  # pragma: no cover
    from tests.unit.test_monitor_windows import reports, s3_endpoint

__all__ = ["reports", "s3_endpoint"]  # fixtures


def test_upload_puts_every_file_and_removes_stale_ones(reports, tmp_path):
    (tmp_path / "css").mkdir()
    (tmp_path / "index.html").write_text("<html></html>")
    (tmp_path / "css" / "a.css").write_text("body{}")
    reports.put_bytes(f"{SITE_PREFIX}old.html", b"gone")

    assert upload(tmp_path, reports) == (2, 1)
    assert sorted(reports.keys(SITE_PREFIX)) == [
        f"{SITE_PREFIX}css/a.css",
        f"{SITE_PREFIX}index.html",
    ]


def test_publish_builds_from_registry_drift_and_audit(reports, tmp_path, monkeypatch):
    settings = Settings(build_dir=tmp_path / "build", root=tmp_path)  # no docs/ in the pod
    row = SimpleNamespace(
        version="3", status="candidate", owner="svc-pipeline", approved_by="-",
        fairness_gate="passed", aliases=[],
    )  # fmt: skip
    monkeypatch.setattr(approvals, "status", lambda _name: [row])
    monkeypatch.setattr("ml.governance.publish._download_card", lambda *_: None)
    verdict = {"at": "2026-12-04T10:00:00+00:00", "verdict": "DRIFT in utilization", "rows": 900}
    reports.put_bytes(DRIFT_LATEST_KEY, json.dumps(verdict).encode())
    reports.put_bytes(f"{DRIFT_PREFIX}20261204T100000Z.json", json.dumps(verdict).encode())
    monkeypatch.setattr(audit, "default_path", lambda: tmp_path / "other-pod" / "audit.jsonl")
    audit.append("approve", "credit-risk/3", "alice")  # lands in the bucket

    result = publish(settings, reports)

    keys = set(reports.keys(SITE_PREFIX))
    assert f"{SITE_PREFIX}index.html" in keys and result.uploaded == len(keys)
    pages = {k: reports.get_bytes(k).decode() for k in keys if k.endswith(".html")}
    assert any("DRIFT in utilization" in p for p in pages.values())
    assert any("svc-pipeline" in p for p in pages.values())
    assert "credit-risk/3" in pages[f"{SITE_PREFIX}audit.html"]
