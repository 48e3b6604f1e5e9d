"""Environment consistency before a model goes live (``mlops release check``).

Two facts must hold for a model version to be served by a stack's serving image:

* the image was built from a commit on main: its tag is the commit (``scripts.build_images``
  tags every image with the first 12 hex digits of the commit it was built from) and that
  commit is an ancestor of the main branch; a dirty build, a branch build or a digest with no
  commit tag is *foreign*;
* the image's ``uv.lock`` is the one the model was trained with: its SHA-256 equals the lock hash
  recorded on the model's training run (:class:`ml.lineage.Lineage`). When they differ the
  packages that changed are listed, and the release needs an explicit, recorded override.

The image's lock is read from git at the image's commit (the image is built with
``uv sync --frozen`` from exactly that file), so the check needs the repository's history and
no registry or Docker daemon.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ml.errors import UserError
from ml.lineage import Lineage

LOCK_FILE = "uv.lock"
# registry/repo:<tag>@sha256:<64 hex>; the tag is what ties the digest to a commit.
_IMAGE_REF = re.compile(
    r"^(?P<repo>[^@\s]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?@(?P<digest>sha256:[0-9a-f]{64})$"
)
# (repository, tag) -> the digest the registry holds for that tag, None when it has none
RegistryLookup = Callable[[str, str], str | None]
_COMMIT_TAG = re.compile(r"^[0-9a-f]{7,40}$")


@dataclass(frozen=True)
class Git:
    """The repository the images are built from (a clone with main's history)."""

    root: Path
    main_ref: str = "origin/main"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", *args], cwd=self.root, capture_output=True, text=True, check=False
        )

    def full_commit(self, prefix: str) -> str | None:
        """The full hash of commit ``prefix``, None when the repository has no such commit."""
        result = self._run("rev-parse", "--verify", "--quiet", f"{prefix}^{{commit}}")
        if result.returncode != 0:
            return None
        return result.stdout.strip()

    def on_main(self, commit: str) -> bool:
        if self._run("rev-parse", "--verify", "--quiet", self.main_ref).returncode != 0:
            raise UserError(
                f"the repository at {self.root} has no {self.main_ref}",
                "fetch it (`git fetch origin main`, or checkout with fetch-depth: 0)",
            )
        return self._run("merge-base", "--is-ancestor", commit, self.main_ref).returncode == 0

    def show(self, commit: str, path: str) -> str | None:
        result = self._run("show", f"{commit}:{path}")
        return result.stdout if result.returncode == 0 else None


@dataclass
class ReleaseCheck:
    """The outcome: ``problems`` block the release; ``lock_changes`` explains a lock mismatch."""

    model: str
    version: str
    image: str
    image_commit: str | None = None
    trained_lock: str = ""
    image_lock: str | None = None
    lock_changes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    override: str | None = None

    @property
    def lock_matches(self) -> bool:
        return self.image_lock == self.trained_lock

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_markdown(self) -> str:
        verdict = "passed" if self.passed else "FAILED"
        rows = [
            f"### Release check {verdict}: {self.model} version {self.version}",
            "",
            "| fact | value |",
            "|---|---|",
            f"| serving image | `{self.image}` |",
            f"| image commit (on main) | `{self.image_commit or '-'}` |",
            f"| uv.lock at training | `{self.trained_lock[:16]}` |",
            f"| uv.lock in the image | `{(self.image_lock or '-')[:16]}` |",
            "",
        ]
        rows += [f"- problem: {p}" for p in self.problems]
        if self.lock_changes:
            rows += ["", "Packages that differ (trained → image):", ""]
            rows += [f"- {change}" for change in self.lock_changes]
        if self.override:
            rows += ["", f"Lock mismatch overridden: {self.override}"]
        return "\n".join(rows) + "\n"


def image_commit_tag(image: str) -> str:
    """The commit an image reference is tagged with.

    Raises:
        UserError: the reference is not pinned by digest, or its tag is not a commit (a dirty
            build, ``latest``, or no tag at all): nothing ties that digest to main.
    """
    match = _IMAGE_REF.match(image)
    if match is None:
        raise UserError(
            f"serving image {image!r} is not pinned as registry/repo:<commit>@sha256:<digest>",
            "build and push it with `uv run python -m scripts.build_images --stack <stack>`",
        )
    tag = match["tag"] or ""
    if not _COMMIT_TAG.match(tag):
        raise UserError(
            f"serving image {image} is tagged {tag or 'with nothing'}, not with a commit: "
            "it is not known to be built from main",
            "rebuild it from a clean checkout of main with scripts.build_images",
        )
    return tag


def _check_registry(image: str, tag: str, registry: RegistryLookup, result: ReleaseCheck) -> None:
    match = _IMAGE_REF.match(image)
    assert match is not None  # image_commit_tag accepted it
    held = registry(match["repo"], tag)
    if held != match["digest"]:
        result.problems.append(
            f"the registry holds {held or 'no image'} for tag {tag}, not {match['digest']}:"
            " the digest was not built from that commit"
        )


def ecr_lookup(repository: str, tag: str) -> str | None:
    """The digest ECR holds for ``repository:tag`` (the caller's AWS credentials)."""
    import boto3

    registry_host, _, name = repository.partition("/")
    region = registry_host.split(".")[3] if ".ecr." in registry_host else None
    ecr = boto3.client("ecr", region_name=region)
    try:
        found = ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])
    except ecr.exceptions.ImageNotFoundException:
        return None
    details = found.get("imageDetails") or []
    return str(details[0]["imageDigest"]) if details else None


def lock_hash(text: str) -> str:
    """SHA-256 of a lock file's bytes, as :func:`ml.lineage.file_sha256` records it."""
    return hashlib.sha256(text.encode()).hexdigest()


def lock_changes(trained: str | None, image: str) -> list[str]:
    """Packages whose locked version differs between two ``uv.lock`` texts, sorted by name."""
    before, after = _versions(trained or ""), _versions(image)
    changes = []
    for name in sorted(before.keys() | after.keys()):
        old, new = before.get(name), after.get(name)
        if old != new:
            changes.append(f"{name}: {old or 'absent'} → {new or 'absent'}")
    return changes


def _versions(lock_text: str) -> dict[str, str]:
    try:
        packages = tomllib.loads(lock_text).get("package", [])
    except tomllib.TOMLDecodeError:
        return {}
    return {p["name"]: str(p.get("version", "?")) for p in packages if "name" in p}


def check(
    model: str,
    version: str,
    lineage: Lineage,
    image: str,
    git: Git,
    allow_lock_mismatch: str | None = None,
    registry: RegistryLookup | None = None,
) -> ReleaseCheck:
    """Check ``image`` against the training ``lineage`` of ``model`` version ``version``.

    Args:
        lineage: what the version's training run recorded (its ``lineage.*`` tags).
        allow_lock_mismatch: the reason to release despite a different ``uv.lock``; the
            mismatch is still shown. A foreign image is never overridable.
        registry: when given, the digest must also be the one the registry holds for the
            commit tag (ECR tags are immutable), so a digest cannot borrow a main commit's tag.
    """
    result = ReleaseCheck(model, version, image, trained_lock=lineage.lock_sha256)
    tag = image_commit_tag(image)
    if registry is not None:
        _check_registry(image, tag, registry, result)
    commit = git.full_commit(tag)
    if commit is None:
        result.problems.append(f"the image's tag names no commit of this repository ({image})")
        return result
    result.image_commit = commit
    if not git.on_main(commit):
        result.problems.append(f"the image was built from {commit[:12]}, which is not on main")
    image_lock = git.show(commit, LOCK_FILE)
    if image_lock is None:
        result.problems.append(f"commit {commit[:12]} has no {LOCK_FILE}")
        return result
    result.image_lock = lock_hash(image_lock)
    if not result.lock_matches:
        trained_text = git.show(lineage.git_commit.removesuffix("-dirty"), LOCK_FILE)
        result.lock_changes = lock_changes(trained_text, image_lock) or [
            "the training commit's lock is not in this repository: compare by hash only"
        ]
        if allow_lock_mismatch:
            result.override = allow_lock_mismatch
        else:
            result.problems.append(
                "the serving image's uv.lock differs from the one the model was trained with"
            )
    return result


def training_lineage(model: str, version: str) -> Lineage:
    """The lineage recorded on the training run of ``model`` version ``version`` (MLflow).

    Raises:
        UserError: the version does not exist or its run recorded no lineage.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        run = client.get_run(client.get_model_version(model, version).run_id or "")
    except MlflowException:
        raise UserError(
            f"{model} version {version} or its training run is not in the registry",
            "check the name and version with `mlops governance status`",
        ) from None
    try:
        return Lineage.from_tags(run.data.tags)
    except (KeyError, ValueError):
        raise UserError(
            f"the training run of {model} version {version} recorded no lineage",
            "retrain it with `mlops pipeline train` (it records the uv.lock hash)",
        ) from None
