"""`mlops release check`: a match, a lock mismatch (shown, overridable) and foreign images."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ml.errors import UserError
from ml.lineage import Lineage
from ml.release import consistency

LOCK_V1 = """[[package]]
name = "numpy"
version = "2.1.0"

[[package]]
name = "mlflow"
version = "3.0.0"
"""
LOCK_V2 = LOCK_V1.replace('"2.1.0"', '"2.2.0"')
REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlops-aws-prod-serving"
DIGEST = "@sha256:" + "a" * 64


def _git(root: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t"}
    env |= {"GIT_COMMITTER_EMAIL": "t@x", "HOME": str(root), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return done.stdout.decode().strip()


def _commit(root: Path, lock: str, message: str) -> str:
    (root / "uv.lock").write_text(lock)
    _git(root, "add", "uv.lock")
    _git(root, "commit", "-q", "-m", message)
    return _git(root, "rev-parse", "HEAD")


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """main: trained (lock v1) → upgraded (lock v2); branch `feature`: an unmerged commit."""
    root = tmp_path_factory.mktemp("repo")
    _git(root, "init", "-q", "-b", "main")
    trained = _commit(root, LOCK_V1, "trained here")
    upgraded = _commit(root, LOCK_V2, "numpy upgrade")
    _git(root, "checkout", "-q", "-b", "feature", trained)
    (root / "README").write_text("not merged")
    _git(root, "add", "README")
    _git(root, "commit", "-q", "-m", "feature")
    feature = _git(root, "rev-parse", "HEAD")
    _git(root, "checkout", "-q", "main")
    return {"git": consistency.Git(root, "main"), "trained": trained, "upgraded": upgraded,
            "feature": feature}  # fmt: skip


def _lineage(commit: str, lock: str) -> Lineage:
    return Lineage("s", "t", "credit_model_v1", commit, consistency.lock_hash(lock), 7)


def _image(commit: str) -> str:
    return f"{REPO}:{commit[:12]}{DIGEST}"


def test_an_image_from_main_with_the_training_lock_passes(repo):
    trained = str(repo["trained"])
    result = consistency.check(
        "credit-risk", "3", _lineage(trained, LOCK_V1), _image(trained), repo["git"]
    )
    assert result.passed and result.lock_matches and result.image_commit == trained
    assert "passed" in result.to_markdown()


def test_a_lock_mismatch_is_shown_and_blocks_without_an_override(repo):
    lineage = _lineage(str(repo["trained"]), LOCK_V1)
    image = _image(str(repo["upgraded"]))
    result = consistency.check("credit-risk", "3", lineage, image, repo["git"])
    assert not result.passed and "uv.lock differs" in result.problems[0]
    assert result.lock_changes == ["numpy: 2.1.0 → 2.2.0"]
    assert "numpy: 2.1.0 → 2.2.0" in result.to_markdown()
    overridden = consistency.check(
        "credit-risk",
        "3",
        lineage,
        image,
        repo["git"],
        allow_lock_mismatch="CVE fix, re-evaluated",
    )
    assert overridden.passed and overridden.override and overridden.lock_changes


def test_an_image_built_from_a_branch_is_foreign(repo):
    feature = str(repo["feature"])
    result = consistency.check(
        "credit-risk", "3", _lineage(feature, LOCK_V1), _image(feature), repo["git"]
    )
    assert not result.passed and "not on main" in result.problems[0]


def test_a_digest_whose_tag_names_no_commit_of_the_repository_is_foreign(repo):
    image = f"{REPO}:{'f' * 12}{DIGEST}"
    result = consistency.check(
        "m", "1", _lineage(str(repo["trained"]), LOCK_V1), image, repo["git"]
    )
    assert not result.passed and "names no commit" in result.problems[0]


NOT_FROM_A_COMMIT = [
    f"{REPO}{DIGEST}",  # no tag at all
    f"{REPO}:abc123def456-dirty-20260101120000{DIGEST}",  # built from uncommitted changes
    f"{REPO}:0.1.0{DIGEST}",
    f"{REPO}:latest",  # not pinned
    f"{REPO}:abc123def456",  # not pinned by digest
]


def test_a_digest_the_registry_does_not_hold_for_the_commit_tag_is_foreign(repo):
    trained = str(repo["trained"])
    lineage, image = _lineage(trained, LOCK_V1), _image(trained)
    held = {(REPO, trained[:12]): "sha256:" + "b" * 64}
    result = consistency.check(
        "m", "1", lineage, image, repo["git"], registry=lambda r, t: held.get((r, t))
    )
    assert not result.passed and "was not built from that commit" in result.problems[0]
    held[(REPO, trained[:12])] = DIGEST.removeprefix("@")
    same = consistency.check(
        "m", "1", lineage, image, repo["git"], registry=lambda r, t: held.get((r, t))
    )
    assert same.passed


@pytest.mark.parametrize("image", NOT_FROM_A_COMMIT)
def test_an_image_not_tagged_with_a_commit_and_pinned_is_refused(image):
    with pytest.raises(UserError):
        consistency.image_commit_tag(image)


def test_the_cli_exits_non_zero_with_one_line_and_audits(repo, monkeypatch, tmp_path):
    from ml.cli import governance, release
    from ml.cli.main import app
    from ml.governance import audit

    lineage = _lineage(str(repo["trained"]), LOCK_V1)
    monkeypatch.setattr(governance, "_model", lambda model: model or "credit-risk")
    monkeypatch.setattr(consistency, "training_lineage", lambda name, version: lineage)
    monkeypatch.setattr(audit, "default_path", lambda: tmp_path / "audit.jsonl")
    monkeypatch.setenv("MLOPS_ROOT", str(repo["git"].root))
    monkeypatch.delenv("MLOPS_REPORTS_BUCKET", raising=False)
    assert release.app  # the group is registered under `mlops release`
    summary = tmp_path / "summary.md"
    args = ["release", "check", "3", "--main-ref", "main", "--summary", str(summary)]
    ok = CliRunner().invoke(app, [*args, "--image", _image(str(repo["trained"]))])
    assert ok.exit_code == 0, ok.output
    bad = CliRunner().invoke(app, [*args, "--image", _image(str(repo["upgraded"]))])
    assert bad.exit_code != 0 and isinstance(bad.exception, UserError)
    assert "uv.lock differs" in bad.exception.line()
    assert summary.read_text().count("### Release check") == 2
    assert (tmp_path / "audit.jsonl").read_text().count('"release-check"') == 2
