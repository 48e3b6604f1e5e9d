"""Reproduce a training run: same training set, environment, parameters and seed; same results?

A run trained by the pipeline records everything needed: its training-set manifest (the archive
rebuilds the set bit for bit), the lineage tags (training-set hash, uv.lock hash, seed), the
candidate's kind and parameters, the features, its holdout metrics and its per-row holdout
probabilities. :func:`reproduce` rebuilds the set, checks the environment, retrains with the
recorded parameters and seed on the same time split, and compares metrics and predictions.

The tolerance rule: in the run's environment (same uv.lock and the model's pinned packages
installed at their recorded versions) the comparison is bitwise, because scikit-learn's
estimators used here are deterministic for a fixed ``random_state`` on the same data and
library versions. When the environment differs, floating-point results may legitimately move
in the last bits, so values within :data:`CROSS_ENVIRONMENT_TOLERANCE` (absolute) count as
equal, and the result says so.

The reproduction is recorded as a run in its own experiment (:data:`REPRODUCTIONS_EXPERIMENT`,
so the training experiment holds only training runs, which retraining and search rank), tagged
``reproduces=<original run id>``; the original gets ``reproduced_by=<new run id>`` where the
tracking server lets the caller tag it.
"""

from __future__ import annotations

import ast
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ml.config import CandidateConfig, PipelineConfig
from ml.errors import UserError
from ml.lineage import Lineage, file_sha256, git_commit
from ml.progress import Stages
from ml.settings import Settings

if TYPE_CHECKING:
    from mlflow.entities import Run

    from ml.features.lineage import TrainingSetManifest

REPRODUCES_TAG = "reproduces"
REPRODUCED_BY_TAG = "reproduced_by"
REPRODUCTIONS_EXPERIMENT = "run-reproductions"
REPORT_ARTIFACT = "reproduction.json"
# pip requirements MLflow infers and logs with the model (pinned ``name==version`` lines).
MODEL_REQUIREMENTS = "model/requirements.txt"
CROSS_ENVIRONMENT_TOLERANCE = 1e-9
# Params ``ml.train`` logs next to the candidate's own parameters.
TRAINING_PARAMS = ("kind", "features", "train_rows", "holdout_rows")
_ONLY_PIPELINE_RUNS = "only runs trained by `mlops pipeline train` (or the demo) can be reproduced"


@dataclass(frozen=True)
class PackageDifference:
    name: str
    recorded: str  # the version pinned in the model's requirements.txt
    installed: str | None  # None: not installed


@dataclass(frozen=True)
class EnvironmentCheck:
    """The current environment against the run's recorded lock hash and model requirements."""

    recorded_lock_sha256: str
    current_lock_sha256: str
    packages: list[PackageDifference]  # pinned model requirements installed at another version
    compared_packages: int  # pinned requirements checked (0: the model has no requirements.txt)
    recorded_git_commit: str
    current_git_commit: str

    @property
    def lock_matches(self) -> bool:
        return self.recorded_lock_sha256 == self.current_lock_sha256

    @property
    def match(self) -> bool:
        return self.lock_matches and not self.packages

    def differences(self) -> list[str]:
        """What differs, one item each (empty when the environment matches)."""
        items = []
        if not self.lock_matches:
            items.append(
                f"uv.lock sha256 {self.recorded_lock_sha256[:12]} recorded, "
                f"{self.current_lock_sha256[:12]} now"
            )
        items += [
            f"{p.name} {p.recorded} recorded, {p.installed or 'not installed'} now"
            for p in self.packages
        ]
        return items

    def summary(self) -> str:
        if not self.compared_packages:
            packages = "the model logged no pinned requirements to compare"
        elif self.packages:
            packages = f"of {self.compared_packages} pinned model requirements"
        else:
            packages = f"{self.compared_packages} pinned model requirements installed as recorded"
        if self.match:
            return f"matches (uv.lock {self.current_lock_sha256[:12]}; {packages})"
        return f"differs: {'; '.join(self.differences())} ({packages})"

    def to_dict(self) -> dict:
        return {**asdict(self), "match": self.match, "differences": self.differences()}


@dataclass(frozen=True)
class MetricComparison:
    name: str
    original: float
    reproduced: float
    equal: bool


@dataclass(frozen=True)
class PredictionsComparison:
    """The reproduced holdout probabilities against the original run's, joined on the row id."""

    rows: int  # rows present in both, joined on the row id
    only_original: int
    only_reproduced: int
    labels_equal: bool
    max_abs_difference: float
    bitwise_equal: int
    tolerance: float
    tolerance_reason: str

    @property
    def equal(self) -> bool:
        same_rows = not self.only_original and not self.only_reproduced and self.labels_equal
        if self.tolerance == 0:
            return same_rows and self.bitwise_equal == self.rows
        return same_rows and self.max_abs_difference <= self.tolerance

    def summary(self) -> str:
        text = (
            f"{self.rows} holdout rows, max |Δ| {self.max_abs_difference:.3g}, "
            f"{self.bitwise_equal}/{self.rows} bitwise equal (tolerance {self.tolerance:g})"
        )
        if self.only_original or self.only_reproduced:
            text += f"; {self.only_original} rows only in the original, "
            text += f"{self.only_reproduced} only in the reproduction"
        if not self.labels_equal:
            text += "; labels differ"
        return text

    def to_dict(self) -> dict:
        return {**asdict(self), "equal": self.equal}


@dataclass(frozen=True)
class Reproduction:
    """What :func:`reproduce` found, and the run that records it."""

    original_run_id: str
    reproduction_run_id: str
    candidate: str
    seed: int
    training_set_expected: str  # the run's lineage.training_set_sha256
    training_set_actual: str  # the rebuilt set's
    environment: EnvironmentCheck
    metrics: list[MetricComparison]
    predictions: PredictionsComparison
    notes: list[str] = field(default_factory=list)

    @property
    def reproduced(self) -> bool:
        return all(m.equal for m in self.metrics) and self.predictions.equal

    @property
    def verdict(self) -> str:
        return "reproduced" if self.reproduced else "not reproduced"

    def to_dict(self) -> dict:
        return {
            "original_run_id": self.original_run_id,
            "reproduction_run_id": self.reproduction_run_id,
            "candidate": self.candidate,
            "seed": self.seed,
            "training_set": {
                "expected_sha256": self.training_set_expected,
                "actual_sha256": self.training_set_actual,
            },
            "environment": self.environment.to_dict(),
            "metrics": [asdict(m) for m in self.metrics],
            "predictions": self.predictions.to_dict(),
            "verdict": self.verdict,
            "notes": self.notes,
        }


@dataclass(frozen=True)
class _RecordedRun:
    run: Run
    lineage: Lineage
    candidate: str
    features: list[str]
    manifest: TrainingSetManifest
    predictions: pd.DataFrame  # its holdout/predictions.parquet


def reproduce(
    run_id: str,
    settings: Settings,
    config: PipelineConfig | None = None,
    strict_env: bool = False,
    archive_dir: Path | None = None,
    stages: Stages | None = None,
) -> Reproduction:
    """Retrain ``run_id`` from its manifest with its parameters and seed; compare; record.

    Args:
        run_id: a candidate run of the training pipeline (MLflow is the active tracking URI).
        settings: where the snapshot archive and uv.lock are.
        config: the pipeline config for the split and decision threshold (default: loaded).
        strict_env: refuse to retrain when the environment differs from the run's.
        archive_dir: the snapshot archive (default: ``<build>/demo/data/snapshots``).
        stages: prints progress when given.

    Returns:
        The comparison; ``reproduction_run_id`` is the MLflow run that records it.

    Raises:
        UserError: an unknown run, a run without lineage tags, params or manifest, an
            environment mismatch with ``strict_env``, a rebuilt training set whose hash differs
            from the recorded one, or a split that no longer gives the run's row counts.
    """
    from ml.config import load_pipeline_config
    from ml.features.rebuild import archive_holding, rebuild_training_set, snapshot_archives

    config = config or load_pipeline_config()

    def stage(name: str, description: str):
        return stages.stage(name, description) if stages else nullcontext()

    # Quick checks first, without progress lines: a refusal stays one line.
    recorded = _read_run(run_id)
    lineage = recorded.lineage
    environment = check_environment(run_id, lineage, settings)
    if strict_env and not environment.match:
        raise UserError(
            f"the environment differs from run {run_id}'s: {'; '.join(environment.differences())}",
            "`uv sync --frozen` at the run's commit, or drop --strict-env",
        )
    with stage("training set", "rebuilding the training set from its manifest"):
        archive = archive_dir or archive_holding(recorded.manifest, snapshot_archives(settings))
        rebuilt = rebuild_training_set(recorded.manifest, archive)
    if rebuilt.sha256 != lineage.training_set_sha256:
        raise UserError(
            f"the rebuilt training set of run {run_id} has sha256 {rebuilt.sha256}, the run was "
            f"trained on {lineage.training_set_sha256}",
            "feature definitions, Feast or the archive changed; see `mlops features rebuild`",
        )
    params = recorded.run.data.params
    candidate, notes = recorded_candidate(recorded.candidate, params, config)
    if environment.recorded_git_commit != environment.current_git_commit:
        notes.append(
            f"code: commit {environment.recorded_git_commit} recorded, "
            f"{environment.current_git_commit} now (reported, not part of the environment check)"
        )
    kind = "" if candidate.kind == recorded.candidate else f" ({candidate.kind})"
    with stage("retrain", f"retraining {recorded.candidate}{kind} with seed {lineage.seed}"):
        holdout, score, metrics = _retrain(rebuilt.frame, recorded, candidate, config)
    tolerance, reason = tolerance_for(environment)
    with stage("compare", "comparing metrics and holdout predictions"):
        metric_rows, metric_notes = compare_metrics(recorded.run.data.metrics, metrics, tolerance)
        predictions = compare_predictions(recorded.predictions, holdout, score, tolerance, reason)
    result = Reproduction(
        original_run_id=run_id,
        reproduction_run_id="",
        candidate=recorded.candidate,
        seed=lineage.seed,
        training_set_expected=lineage.training_set_sha256,
        training_set_actual=rebuilt.sha256,
        environment=environment,
        metrics=metric_rows,
        predictions=predictions,
        notes=notes + metric_notes,
    )
    today = replace(
        lineage,
        training_set_sha256=rebuilt.sha256,
        git_commit=environment.current_git_commit,
        lock_sha256=environment.current_lock_sha256,
    )
    with stage("record", "recording the reproduction as an MLflow run"):
        return _record(result, recorded, today, candidate, metrics, holdout, score)


def _retrain(
    frame: pd.DataFrame, recorded: _RecordedRun, candidate: CandidateConfig, config: PipelineConfig
) -> tuple[pd.DataFrame, np.ndarray, dict[str, float]]:
    """Fit ``candidate`` with the run's seed on the time split; its holdout, scores, metrics."""
    from ml.evaluate import classification_metrics
    from ml.train import LABEL, build_model, time_split

    train, holdout = time_split(frame, config.split.holdout_fraction)
    params = recorded.run.data.params
    logged_rows = (int(params["train_rows"]), int(params["holdout_rows"]))
    if (len(train), len(holdout)) != logged_rows:
        raise UserError(
            f"the configured split gives {len(train)} training / {len(holdout)} holdout rows; "
            f"run {recorded.run.info.run_id} had {logged_rows[0]} / {logged_rows[1]}",
            "reproduce with the run's split.holdout_fraction in ml/pipeline.yaml",
        )
    features = recorded.features
    model = build_model(candidate, recorded.lineage.seed)
    model.fit(train[features], train[LABEL].to_numpy())
    score = model.predict_proba(holdout[features])[:, 1]
    return holdout, score, classification_metrics(holdout[LABEL], score, config.decision_threshold)


def _read_run(run_id: str) -> _RecordedRun:
    from ml.experiments.compare import get_run, load_holdout
    from ml.features.lineage import MANIFEST_ARTIFACT, run_manifest

    run = get_run(run_id)
    tags, params = run.data.tags, run.data.params
    needed = [f"lineage.{key}" for key in Lineage.__dataclass_fields__] + ["candidate"]
    missing = [key for key in needed if key not in tags]
    missing += [f"param {key}" for key in TRAINING_PARAMS if key not in params]
    if missing:
        raise UserError(f"run {run_id} has no {', '.join(missing)}", _ONLY_PIPELINE_RUNS)
    manifest = run_manifest(run_id)
    if manifest is None:
        raise UserError(
            f"run {run_id} has no training-set manifest ({MANIFEST_ARTIFACT})", _ONLY_PIPELINE_RUNS
        )
    try:
        lineage = Lineage.from_tags({k: v for k, v in tags.items() if k.startswith("lineage.")})
    except ValueError:
        raise UserError(
            f"run {run_id} has a non-integer lineage.seed {tags['lineage.seed']!r}",
            _ONLY_PIPELINE_RUNS,
        ) from None
    features = params["features"].split(",")
    predictions = load_holdout(run_id).predictions  # refuses a run without them, in one line
    return _RecordedRun(run, lineage, tags["candidate"], features, manifest, predictions)


def recorded_candidate(
    name: str, params: dict[str, str], config: PipelineConfig
) -> tuple[CandidateConfig, list[str]]:
    """The candidate a run trained, rebuilt from its logged (string) params, and how it differs
    from the candidate of that name in today's pipeline config.

    A logged value is parsed with the type of the configured value of that key, else as a
    Python literal (MLflow logged ``str(value)``), else kept as text. The run's parameters are
    what is retrained; a difference from the config is only reported.
    """
    configured = config.candidates.get(name)
    expected = configured.params if configured else {}
    own = {k: v for k, v in params.items() if k not in TRAINING_PARAMS}
    parsed = {key: _parse(text, expected.get(key)) for key, text in own.items()}
    candidate = CandidateConfig(kind=params["kind"], params=parsed)
    if configured is None:
        return candidate, [f"candidate {name} is no longer in the pipeline config"]
    notes = []
    if configured.kind != candidate.kind:
        notes.append(f"kind: the run used {candidate.kind}, the config has {configured.kind}")
    for key in sorted(set(expected) | set(parsed)):
        used, now = parsed.get(key, "(unset)"), expected.get(key, "(unset)")
        if used != now or type(used) is not type(now):
            notes.append(f"{name}.{key}: the run used {used!r}, the config has {now!r}")
    if notes:
        notes.append("retrained with the run's parameters")
    return candidate, notes


def _parse(text: str, like: Any) -> Any:
    if isinstance(like, bool):
        if text in ("True", "False"):
            return text == "True"
    elif isinstance(like, int | float | str):
        try:
            return type(like)(text)
        except ValueError:
            pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def check_environment(run_id: str, lineage: Lineage, settings: Settings) -> EnvironmentCheck:
    """Today's uv.lock hash and installed packages against the run's lock hash and the
    versions its model pinned (MLflow's ``model/requirements.txt``)."""
    required = model_requirements(run_id)
    differences = [
        PackageDifference(name, version, installed)
        for name, version in sorted(required.items())
        if (installed := installed_version(name)) != version
    ]
    return EnvironmentCheck(
        recorded_lock_sha256=lineage.lock_sha256,
        current_lock_sha256=file_sha256(settings.lock_file),
        packages=differences,
        compared_packages=len(required),
        recorded_git_commit=lineage.git_commit,
        current_git_commit=git_commit(settings.root),
    )


def model_requirements(run_id: str) -> dict[str, str]:
    """Pinned ``name==version`` lines of the run's model requirements (empty if none)."""
    import mlflow

    try:
        path = mlflow.artifacts.download_artifacts(
            artifact_uri=f"runs:/{run_id}/{MODEL_REQUIREMENTS}"
        )
    except Exception:  # MLflow raises several types for a missing artifact
        return {}
    from packaging.requirements import InvalidRequirement, Requirement

    pinned = {}
    for line in Path(path).read_text().splitlines():
        try:
            requirement = Requirement(line.strip())
        except InvalidRequirement:  # a comment, an option line, a blank line
            continue
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue  # for another Python or platform (`uv export` writes the whole lock)
        pins = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if len(pins) == 1:
            pinned[requirement.name] = pins[0]
    return pinned


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def tolerance_for(environment: EnvironmentCheck) -> tuple[float, str]:
    """The absolute tolerance for metrics and predictions, and why."""
    if environment.match:
        return 0.0, (
            "bitwise: same training set, parameters, seed and environment; the scikit-learn "
            "estimators are deterministic for a fixed random_state"
        )
    return CROSS_ENVIRONMENT_TOLERANCE, (
        f"absolute {CROSS_ENVIRONMENT_TOLERANCE:g}: the environment differs, so floating-point "
        "results may differ in the last bits"
    )


def compare_metrics(
    original: dict[str, float], reproduced: dict[str, float], tolerance: float
) -> tuple[list[MetricComparison], list[str]]:
    """Per metric both runs have: equal (within ``tolerance``, 0 meaning exactly)?"""
    rows = [
        MetricComparison(name, original[name], value, abs(original[name] - value) <= tolerance)
        for name, value in reproduced.items()
        if name in original
    ]
    absent = sorted(set(reproduced) - set(original))
    return rows, [f"the original run has no metric {', '.join(absent)}"] if absent else []


def compare_predictions(
    original: pd.DataFrame,
    holdout: pd.DataFrame,
    score: np.ndarray,
    tolerance: float,
    reason: str,
) -> PredictionsComparison:
    """Reproduced holdout probabilities against the run's (``holdout/predictions.parquet``),
    joined on the row id."""
    from ml.train import LABEL, ROW_ID

    again = pd.DataFrame(
        {
            ROW_ID: holdout[ROW_ID].to_numpy(),
            LABEL: holdout[LABEL].to_numpy(),
            "probability": score,
        }
    )
    joined = original.merge(again, on=ROW_ID, how="outer", suffixes=("", "_again"), indicator=True)
    both = joined[joined["_merge"] == "both"]
    before = np.ascontiguousarray(both["probability"].to_numpy(dtype=np.float64))
    after = np.ascontiguousarray(both["probability_again"].to_numpy(dtype=np.float64))
    return PredictionsComparison(
        rows=len(both),
        only_original=int((joined["_merge"] == "left_only").sum()),
        only_reproduced=int((joined["_merge"] == "right_only").sum()),
        labels_equal=bool((both[LABEL].to_numpy() == both[f"{LABEL}_again"].to_numpy()).all()),
        max_abs_difference=float(np.abs(before - after).max()) if len(both) else 0.0,
        bitwise_equal=int((before.view(np.uint64) == after.view(np.uint64)).sum()),
        tolerance=tolerance,
        tolerance_reason=reason,
    )


def _record(
    result: Reproduction,
    recorded: _RecordedRun,
    lineage: Lineage,
    candidate: CandidateConfig,
    metrics: dict[str, float],
    holdout: pd.DataFrame,
    score: np.ndarray,
) -> Reproduction:
    """Log the reproduction as a run beside the original and link the two."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from ml.train import log_holdout_predictions

    original = recorded.run
    tags = {
        **lineage.tags(),
        "candidate": recorded.candidate,
        REPRODUCES_TAG: result.original_run_id,
        "reproduction.verdict": result.verdict,
        "reproduction.environment_match": str(result.environment.match).lower(),
    }
    name = f"{original.info.run_name or recorded.candidate}-reproduction"
    mlflow.set_experiment(REPRODUCTIONS_EXPERIMENT)
    with mlflow.start_run(run_name=name, tags=tags) as run:
        mlflow.log_params({"kind": candidate.kind, **candidate.params})
        mlflow.log_params(
            {
                "features": ",".join(recorded.features),
                "train_rows": original.data.params["train_rows"],
                "holdout_rows": len(holdout),
            }
        )
        mlflow.log_metrics(metrics)
        log_holdout_predictions(holdout, score)
        result = replace(result, reproduction_run_id=run.info.run_id)
        try:
            MlflowClient().set_tag(result.original_run_id, REPRODUCED_BY_TAG, run.info.run_id)
        except MlflowException as error:  # e.g. a server that lets only the owner tag it
            first = error.message.splitlines()[0]
            note = f"the original run was not tagged {REPRODUCED_BY_TAG}: {first}"
            result = replace(result, notes=[*result.notes, note])
        mlflow.log_dict(result.to_dict(), REPORT_ARTIFACT)
    return result
