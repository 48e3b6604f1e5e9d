"""The training set a study tunes on: a past run's, rebuilt bit for bit from its manifest.

Tuning on the champion's exact training set gives every trial the champion's holdout, so the
best trial can be compared with the champion by ``mlops experiments compare``.
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from ml.errors import UserError
from ml.lineage import Lineage, file_sha256, git_commit
from ml.settings import Settings


def training_set_of(run_id: str | None, settings: Settings) -> tuple[str, pd.DataFrame, Lineage]:
    """The run (default: the champion's), its training set, and the lineage to tag trials with
    (the run's, with today's code commit and lock file).

    Raises:
        UserError: no champion, no manifest on the run, or a rebuild whose hash differs.
    """
    from mlflow import MlflowClient

    from ml import registry
    from ml.features.lineage import run_manifest
    from ml.features.rebuild import archive_holding, rebuild_training_set, snapshot_archives

    if run_id is None:
        champion = registry.alias_version(settings.model_name, registry.CHAMPION)
        if champion is None:
            raise UserError(
                f"{settings.model_name} has no champion to tune against",
                "pass --from-run with a training run id",
            )
        run_id = str(champion.run_id)
    manifest = run_manifest(run_id)
    if manifest is None:
        raise UserError(f"run {run_id} has no training-set manifest", "pick a pipeline run")
    archive = archive_holding(manifest, snapshot_archives(settings))
    rebuilt = rebuild_training_set(manifest, archive)
    if not rebuilt.matches:
        raise UserError(
            f"the rebuilt training set of run {run_id} differs from the recorded one",
            "run `mlops features rebuild` to see why; tune on a fresh pipeline run",
        )
    lineage = Lineage.from_tags(MlflowClient().get_run(run_id).data.tags)
    today = replace(
        lineage, git_commit=git_commit(settings.root), lock_sha256=file_sha256(settings.lock_file)
    )
    return run_id, rebuilt.frame, today
