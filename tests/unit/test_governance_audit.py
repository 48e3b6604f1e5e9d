"""The audit log detects any edited, deleted, reordered or inserted entry and names the line."""

from __future__ import annotations

import itertools
import json
import threading

import pytest

from ml.governance import audit


@pytest.fixture
def log(tmp_path):
    path = tmp_path / "audit.jsonl"
    for i in range(5):
        audit.append("approve", f"credit-risk/{i}", "bob", {"comment": f"ok {i}"}, path=path)
    return path


def test_intact_log_verifies_and_entries_are_chained(log):
    result = audit.verify(log)
    assert result.ok and result.entries == 5
    entries = audit.read(log)
    assert entries[0]["prev_hash"] == audit.GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    assert set(entries[0]) == set(audit.FIELDS)
    assert audit.read(log, subject="credit-risk/3")[0]["seq"] == 4


def _edit(lines):
    entry = json.loads(lines[2])
    entry["actor"] = "mallory"
    lines[2] = json.dumps(entry, sort_keys=True)


def _edit_and_rehash(lines):
    entry = json.loads(lines[2])
    entry["details"] = {"comment": "rewritten"}
    entry["hash"] = audit.entry_hash(entry)
    lines[2] = json.dumps(entry, sort_keys=True)


def _delete(lines):
    del lines[2]


def _swap(lines):
    lines[1], lines[2] = lines[2], lines[1]


def _insert(lines):
    forged = json.loads(lines[1])
    forged["action"] = "promote"
    forged["hash"] = audit.entry_hash(forged)
    lines.insert(2, json.dumps(forged, sort_keys=True))


def _truncate(lines):
    del lines[-1]


@pytest.mark.parametrize(
    ("tamper", "bad_line", "reason"),
    [
        (_edit, 3, "entry edited"),
        (_edit_and_rehash, 4, "prev_hash does not match"),
        (_delete, 3, "prev_hash does not match"),
        (_swap, 2, "prev_hash does not match"),
        (_insert, 3, "prev_hash does not match"),
        (_truncate, 5, "removed from the end"),
    ],
)
def test_tampering_is_detected_at_the_first_bad_line(log, tamper, bad_line, reason):
    lines = log.read_text().splitlines()
    tamper(lines)
    log.write_text("\n".join(lines) + "\n")
    result = audit.verify(log)
    assert not result.ok
    assert result.bad_line == bad_line
    assert reason in result.reason
    assert f"line {bad_line}" in result.summary()


def test_concurrent_appends_keep_one_chain(tmp_path):
    path = tmp_path / "audit.jsonl"
    threads = [
        threading.Thread(target=lambda i=i: audit.append("retrain", f"m/{i}", "svc", path=path))
        for i in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert audit.verify(path).entries == 20 and audit.verify(path).ok


def test_cli_verify_log_exits_non_zero_on_tampering(log):
    from typer.testing import CliRunner

    from ml.cli.governance import app

    assert CliRunner().invoke(app, ["verify-log", str(log)]).exit_code == 0
    log.write_text(log.read_text().replace("ok 1", "ok 9"))
    result = CliRunner().invoke(app, ["verify-log", str(log)])
    assert result.exit_code == 1 and "line 2" in result.output
