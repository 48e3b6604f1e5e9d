"""Compare runs evaluated on the same holdout, with paired tests and Holm's correction.

Every run after the first is compared with the first (the baseline, typically the champion).
Runs must share their training set (the manifest's ``training_set_sha256``, else the lineage
tag of the same hash) and therefore their time-split holdout; their per-row probabilities come
from the ``holdout/predictions.parquet`` artifact that training logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ml.errors import UserError
from ml.experiments.stats import Test, holm, paired_tests
from ml.train import HOLDOUT_PREDICTIONS_ARTIFACT, LABEL, ROW_ID

COMPARISONS_EXPERIMENT = "run-comparisons"


@dataclass(frozen=True)
class RunHoldout:
    """One run's identity and its probabilities on its holdout rows."""

    run_id: str
    name: str
    training_set_sha256: str
    predictions: pd.DataFrame  # ROW_ID, LABEL, probability


@dataclass(frozen=True)
class Pair:
    baseline: str  # run ids
    challenger: str
    tests: list[Test]


@dataclass
class Comparison:
    runs: list[RunHoldout]
    pairs: list[Pair]
    threshold: float
    alpha: float
    labels: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)  # (runs, rows), aligned on ROW_ID

    def to_dict(self) -> dict:
        return {
            "runs": [
                {"run_id": r.run_id, "name": r.name, "training_set_sha256": r.training_set_sha256}
                for r in self.runs
            ],
            "holdout_rows": len(self.labels),
            "threshold": self.threshold,
            "alpha": self.alpha,
            "correction": "holm",
            "pairs": [
                {
                    "baseline": p.baseline,
                    "challenger": p.challenger,
                    "tests": [t.to_dict() for t in p.tests],
                }
                for p in self.pairs
            ],
        }


def compare_runs(
    run_ids: list[str], threshold: float, alpha: float = 0.05, resamples: int = 2000
) -> Comparison:
    """Test every run against the first on their shared holdout.

    Args:
        run_ids: two or more MLflow run ids; the first is the baseline.
        threshold: decision threshold for McNemar's test.
        alpha: family-wise error rate over all pairs and metrics (Holm).
        resamples: bootstrap resamples.

    Raises:
        UserError: fewer than two runs, an unknown run, a run without holdout predictions, or
            runs whose holdouts differ.
    """
    if len(set(run_ids)) < 2:
        raise UserError("compare needs at least two different runs", "pass RUN_A RUN_B [...]")
    runs = [load_holdout(run_id) for run_id in run_ids]
    labels, scores = align(runs)
    raw = [
        Pair(runs[0].run_id, run.run_id, paired_tests(labels, scores[0], scores[i], threshold,
                                                      resamples, alpha))
        for i, run in enumerate(runs[1:], start=1)
    ]  # fmt: skip
    adjusted = iter(holm([t for p in raw for t in p.tests], alpha))
    pairs = [Pair(p.baseline, p.challenger, [next(adjusted) for _ in p.tests]) for p in raw]
    return Comparison(runs, pairs, threshold, alpha, labels, scores)


def get_run(run_id: str):
    """The MLflow run ``run_id``, or a one-line reason why not."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_run(run_id)
    except MlflowException as error:
        raise UserError(
            f"no run {run_id}: {error.message.splitlines()[0]}",
            "check the run id and MLOPS_MLFLOW_TRACKING_URI",
        ) from None


def load_holdout(run_id: str) -> RunHoldout:
    """A run's training-set hash and holdout predictions, or a one-line reason why not."""
    import mlflow

    run = get_run(run_id)
    sha = training_set_hash(run)
    if sha is None:
        raise UserError(
            f"run {run_id} records no training-set hash, so its holdout is unknown",
            "compare runs trained by the pipeline or `mlops experiments tune`",
        )
    try:
        path = mlflow.artifacts.download_artifacts(
            run_id=run_id, artifact_path=HOLDOUT_PREDICTIONS_ARTIFACT
        )
    except Exception:  # MLflow raises several types for a missing artifact
        raise UserError(
            f"run {run_id} has no {HOLDOUT_PREDICTIONS_ARTIFACT}",
            "retrain it: training logs holdout predictions since issue 13",
        ) from None
    return RunHoldout(run_id, run.info.run_name or run_id[:8], sha, pd.read_parquet(path))


def training_set_hash(run) -> str | None:
    """The run's training-set hash: its manifest's, else its lineage tag's, else None."""
    from ml.features.lineage import run_manifest
    from ml.lineage import Lineage

    manifest = run_manifest(run.info.run_id)
    if manifest is not None:
        return manifest.training_set_sha256
    try:
        return Lineage.from_tags(run.data.tags).training_set_sha256
    except (KeyError, ValueError):
        return None


def align(runs: list[RunHoldout]) -> tuple[np.ndarray, np.ndarray]:
    """Labels and a (runs, rows) score matrix on the shared holdout rows, ordered by row id.

    Raises:
        UserError: the runs' training sets or holdout rows differ.
    """
    first = runs[0]
    for run in runs[1:]:
        if run.training_set_sha256 != first.training_set_sha256:
            raise UserError(
                f"runs were evaluated on different holdouts: {first.run_id} (training set "
                f"{first.training_set_sha256[:12]}) vs {run.run_id} "
                f"({run.training_set_sha256[:12]})",
                "compare only runs trained on the same training-set manifest",
            )
    frames = [
        r.predictions.sort_values(ROW_ID, kind="stable").reset_index(drop=True) for r in runs
    ]
    for run, frame in zip(runs[1:], frames[1:], strict=True):
        same = frame[ROW_ID].equals(frames[0][ROW_ID]) and frame[LABEL].equals(frames[0][LABEL])
        if not same:
            raise UserError(
                f"runs {first.run_id} and {run.run_id} share a training set but not their "
                "holdout rows (a different holdout fraction?)",
                "compare runs trained with the same split",
            )
    scores = np.vstack([f["probability"].to_numpy(dtype=float) for f in frames])
    return frames[0][LABEL].to_numpy(dtype=int), scores
