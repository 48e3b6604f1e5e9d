"""Where a model came from: the facts every training run records.

One :class:`Lineage` travels from the data stage to the MLflow run tags, the registered model
version's tags and the model card, so that a model version can always be traced back to the
exact data snapshot, feature service, code commit and environment that produced it.
"""

from __future__ import annotations

import hashlib
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class Lineage:
    snapshot_sha256: str  # the validated source tables
    training_set_sha256: str  # the point-in-time training set built from them
    feature_service: str
    git_commit: str
    lock_sha256: str  # uv.lock: the exact environment
    seed: int

    def tags(self) -> dict[str, str]:
        """MLflow tags, namespaced so they sort together in the UI."""
        return {f"lineage.{key}": str(value) for key, value in asdict(self).items()}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Lineage:
        values = {key.removeprefix("lineage."): value for key, value in tags.items()}
        return cls(
            snapshot_sha256=values["snapshot_sha256"],
            training_set_sha256=values["training_set_sha256"],
            feature_service=values["feature_service"],
            git_commit=values["git_commit"],
            lock_sha256=values["lock_sha256"],
            seed=int(values["seed"]),
        )


def git_commit(root: Path) -> str:
    """The commit of the working tree, with ``-dirty`` when it has uncommitted changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else "missing"
