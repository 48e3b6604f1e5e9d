"""An append-only, tamper-evident audit log of governance decisions (JSON Lines, hash-chained).

Each line is one entry::

    {"seq", "timestamp", "actor", "action", "subject", "details", "prev_hash", "hash"}

``hash`` is the SHA-256 of the canonical JSON (sorted keys, no spaces) of the entry without
``hash``; ``prev_hash`` is the previous entry's ``hash`` (64 zeros for the first). Changing,
deleting, reordering or inserting a line therefore breaks the chain at that line, which
:func:`verify` reports. Cutting entries off the *end* leaves a valid shorter chain, so every
append also rewrites a small ``<log>.head`` file with the last ``seq`` and ``hash``; verify checks
the log reaches it. Someone who can rewrite both files can still forge a consistent history in
that copy; what survives them is a copy elsewhere.

Appends take an exclusive ``flock`` so concurrent writers (the CLI, the retraining job) cannot
interleave or fork the chain.

In the cluster every Job has its own ``/tmp``, so when a reports bucket is configured
(``MLOPS_REPORTS_BUCKET``) and no explicit path is given, the log of record is the object store
(``AUDIT_LOG_KEY`` and ``AUDIT_HEAD_KEY``): an append downloads both, appends locally and
uploads both; read and verify download first. That read-append-write is not atomic across pods:
it assumes one governance writer at a time (a reviewer's command, or the pipeline registering a
candidate, which do not run concurrently in practice). Two simultaneous appends would lose one
entry, never fork the chain silently: the next verify still checks whatever was uploaded.

In the AWS stacks that bucket is versioned and under S3 Object Lock (GOVERNANCE in aws-dev,
COMPLIANCE in aws-prod; ``infra/platforms/aws.py``): every upload is a new object version that
cannot be deleted or overwritten until its retention ends, so rewriting the log in the bucket
leaves the earlier versions beside it. :func:`verify_copies` (``mlops governance verify-log``)
checks the local file and the bucket's current version, each on its own, and names the first
broken line of each; comparing the current version with the locked earlier ones is left to an
auditor with ``s3:ListBucketVersions`` (this module does not read old versions). The local
stand-in for S3 in the ``local`` stack has no Object Lock.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

GENESIS_HASH = "0" * 64
FIELDS = ("seq", "timestamp", "actor", "action", "subject", "details", "prev_hash", "hash")


def default_path() -> Path:
    """``<settings.build>/audit/audit.jsonl``."""
    from ml.settings import get_settings

    return get_settings().build / "audit" / "audit.jsonl"


def model_subject(model_name: str, version: str | int) -> str:
    """The subject string of a model version, e.g. ``credit-risk/3``."""
    return f"{model_name}/{version}"


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``entry`` without its ``hash`` field."""
    body = {key: value for key, value in entry.items() if key != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def append(
    action: str,
    subject: str,
    actor: str,
    details: dict[str, Any] | None = None,
    *,
    path: Path | None = None,
) -> dict[str, Any]:
    """Append one entry to the log, chained to the last one.

    Args:
        action: what happened, e.g. ``register``, ``approve``, ``promote``, ``rollback``,
            ``retrain-decision``.
        subject: what it happened to; for a model version use :func:`model_subject`.
        actor: the user or service account that did it.
        details: JSON-serialisable facts (reason, metrics, previous version, ...).
        path: the log file (default :func:`default_path`).

    Returns:
        The entry as written, including ``seq`` and ``hash``.
    """
    remote = _remote() if path is None else None
    path = path or default_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        if remote is not None:
            _download(remote, path)
        last = _last_entry(path)
        entry: dict[str, Any] = {
            "seq": last["seq"] + 1 if last else 1,
            "timestamp": datetime.now(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "subject": subject,
            "details": details or {},
            "prev_hash": last["hash"] if last else GENESIS_HASH,
        }
        entry["hash"] = entry_hash(entry)
        with path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
            log.flush()
            os.fsync(log.fileno())
        _head_path(path).write_text(json.dumps({"seq": entry["seq"], "hash": entry["hash"]}))
        if remote is not None:
            _upload(remote, path)
    return entry


def pull(path: Path | None = None) -> Path:
    """The local copy of the log of record: downloaded from the object store when configured.

    With an explicit ``path`` nothing is downloaded: that file is the log.
    """
    if path is not None:
        return path
    path = default_path()
    fetch(path)
    return path


def fetch(path: Path) -> bool:
    """Download the object store's log (and head) to ``path``; False without a reports bucket."""
    remote = _remote()
    if remote is None:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    _download(remote, path)
    return True


def _remote():
    """The reports bucket when this process has one (pods do; the embedded demo does not)."""
    from contract.objectstore import AUDIT_BUCKET
    from ml.objectstore import Bucket, configured

    return Bucket.for_role(AUDIT_BUCKET) if configured(AUDIT_BUCKET) else None


def _download(remote, path: Path) -> None:
    from contract.objectstore import AUDIT_HEAD_KEY, AUDIT_LOG_KEY

    for key, local in ((AUDIT_LOG_KEY, path), (AUDIT_HEAD_KEY, _head_path(path))):
        if remote.exists(key):
            local.write_bytes(remote.get_bytes(key))
        else:  # the store has no log yet: a stale local copy must not be extended
            local.unlink(missing_ok=True)


def _upload(remote, path: Path) -> None:
    from contract.objectstore import AUDIT_HEAD_KEY, AUDIT_LOG_KEY

    # The log first, then its head: a crash in between leaves a head behind the log, which
    # verify reports; the next append rewrites both.
    remote.put_bytes(AUDIT_LOG_KEY, path.read_bytes(), "application/x-ndjson")
    remote.put_bytes(AUDIT_HEAD_KEY, _head_path(path).read_bytes(), "application/json")


def read(path: Path | None = None, subject: str | None = None) -> list[dict[str, Any]]:
    """All entries (optionally only those about ``subject``), oldest first; no verification."""
    path = pull(path)
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in entries if subject is None or e.get("subject") == subject]


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    bad_line: int | None = None  # 1-based line number of the first bad entry
    reason: str = ""

    def summary(self) -> str:
        if self.ok:
            return f"audit log intact: {self.entries} entries, hash chain verified"
        return f"audit log tampered at line {self.bad_line}: {self.reason}"


def verify(path: Path | None = None) -> Verification:
    """Check the whole chain; name the first line that is edited, missing, moved or inserted."""
    path = pull(path)
    if not path.exists():
        return Verification(ok=True, entries=0)
    lines = path.read_text(encoding="utf-8").splitlines()
    prev_hash, expected_seq = GENESIS_HASH, 1
    for number, line in enumerate(lines, start=1):
        problem = _check_line(line, prev_hash, expected_seq)
        if problem:
            return Verification(False, number - 1, number, problem)
        entry = json.loads(line)
        prev_hash, expected_seq = entry["hash"], entry["seq"] + 1
    return _check_head(path, len(lines), prev_hash, expected_seq - 1)


def verify_copies(path: Path | None = None) -> dict[str, Verification]:
    """Verify each copy of the log on its own: the local file and the object store's.

    ``path`` (default :func:`default_path`) is read as it is, never replaced by a download, so a
    local edit is found there; when a reports bucket is configured its copy is downloaded to a
    temporary folder and verified too, and a local copy that is not a prefix of it (the local
    file is what this machine last wrote or read) is reported at the first line that differs.

    Returns:
        Where each copy is (``local <path>``, ``object store <key>``) -> its verification;
        only copies that exist.
    """
    import tempfile

    from contract.objectstore import AUDIT_BUCKET, AUDIT_LOG_KEY

    path = path or default_path()
    results = {f"local {path}": verify(path)} if path.exists() else {}
    remote = _remote()
    if remote is None or not remote.exists(AUDIT_LOG_KEY):
        return results
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / path.name
        _download(remote, copy)
        where = f"object store {AUDIT_BUCKET}:{AUDIT_LOG_KEY}"
        results[where] = verify(copy)
        if path.exists() and results[f"local {path}"].ok and results[where].ok:
            results[f"local {path}"] = _check_prefix(path, copy)
    return results


def _check_prefix(local: Path, remote: Path) -> Verification:
    """The local copy must be the object store's log or an earlier state of it."""
    mine, theirs = local.read_text().splitlines(), remote.read_text().splitlines()
    for number, (a, b) in enumerate(zip(mine, theirs, strict=False), start=1):
        if a != b:
            return Verification(
                False, number - 1, number, "differs from the object store's copy at this line"
            )
    if len(mine) > len(theirs):
        return Verification(
            False, len(theirs), len(theirs) + 1, "entries missing from the object store's copy"
        )
    return Verification(True, len(mine))


def _check_line(line: str, prev_hash: str, expected_seq: int) -> str:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return "not valid JSON"
    if not isinstance(entry, dict) or set(entry) != set(FIELDS):
        return f"fields are not exactly {list(FIELDS)}"
    if entry["hash"] != entry_hash(entry):
        return "content does not match its hash (entry edited)"
    if entry["prev_hash"] != prev_hash:
        return "prev_hash does not match the previous entry (entry deleted, inserted or moved)"
    if entry["seq"] != expected_seq:
        return f"seq {entry['seq']} where {expected_seq} was expected (entries out of order)"
    return ""


def _check_head(path: Path, count: int, last_hash: str, last_seq: int) -> Verification:
    head_path = _head_path(path)
    if not head_path.exists():
        return Verification(True, count)
    head = json.loads(head_path.read_text())
    if head.get("seq") == last_seq and head.get("hash") == last_hash:
        return Verification(True, count)
    return Verification(
        False,
        count,
        count + 1,
        f"log ends at seq {last_seq} but {head_path.name} records seq {head.get('seq')} "
        "(entries removed from the end, or the head file was changed)",
    )


def _head_path(path: Path) -> Path:
    return path.with_name(path.name + ".head")


def _last_entry(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    with path.open("rb") as log:
        lines = log.read().splitlines()
    for line in reversed(lines):
        if line.strip():
            return json.loads(line)
    return None


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # A separate lock file, so readers of the log itself never wait.
    with _head_path(path).with_suffix(".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
