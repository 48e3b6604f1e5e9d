"""``mlops bench artifacts``: the deduplicated artifact store against MLflow's plain folder.

1. A real tuning sweep (:func:`ml.experiments.tune.tune`, every completed trial logging its
   model, as autologging would) runs on the demo champion's training set into a scratch store.
2. Each trial's artifacts (its run's files and its model's) are logged again, trial by trial,
   into two MLflow servers that differ only in ``--artifacts-destination``: a plain folder
   (MLflow's default) and ``cas+file://`` (:mod:`ml.experiments.dedup_store`). The order
   alternates per trial, so drift in the machine's load hits both.
3. Every run is downloaded again from both, alternating, three times, and checked byte for
   byte.
4. Half of the runs' artifacts are deleted through the server and the garbage collector runs;
   the other half must still load unchanged.

Bytes are the files each store holds (apparent size, what an object store bills) and the disk
blocks they take on this file system.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import mlflow
import pandas as pd
from mlflow import MlflowClient

from ml.experiments.dedup_store import collect_garbage
from ml.lineage import Lineage
from ml.serve.server import free_port
from ml.settings import Settings
from ml.tracking import MlflowServer, artifact_store_uri

Say = Callable[[str], None]


@dataclass
class Target:
    """One tracking server under test and what was measured on it."""

    name: str
    server: MlflowServer
    uri: str = ""
    experiment_id: str = ""
    runs: list[str] = field(default_factory=list)
    log_s: list[float] = field(default_factory=list)
    load_s: list[float] = field(default_factory=list)


def run_artifacts_bench(
    settings: Settings,
    frame: pd.DataFrame,
    lineage: Lineage,
    candidate: str,
    trials: int,
    say: Say,
) -> dict:
    """Run the sweep, replay it into both stores, and return the figures (see module doc)."""
    from ml.features import store as feature_store

    with tempfile.TemporaryDirectory(dir=settings.build, prefix="bench-artifacts-") as scratch:
        work = Path(scratch)
        features = feature_store.model_features(settings.feature_service)
        say(f"sweep: {trials} trials of {candidate}, every completed trial logs its model")
        started = time.perf_counter()
        trees = _sweep(settings, frame, features, lineage, candidate, trials, work)
        sweep_s = time.perf_counter() - started
        say(f"sweep: {len(trees)} trial runs with artifacts in {sweep_s:.0f} s")
        targets = [
            Target("default", MlflowServer(work / "default", free_port(), str(work / "plain"))),
            Target("dedup", MlflowServer(work / "dedup", free_port())),
        ]
        try:
            for target in targets:
                target.server.start()
            for target in targets:
                target.uri = target.server.wait_ready()
                client = MlflowClient(target.uri)
                target.experiment_id = client.create_experiment("bench-artifacts")
            _log_interleaved(trees, targets, say)
            logged_digests = [_digests(tree) for tree in trees]  # what every load must return
            mismatches = _load_interleaved(logged_digests, targets, say)
            stored = {
                "default": _disk(work / "plain"),
                "dedup": _disk(work / "dedup" / "artifacts"),
            }
            garbage = _collect_after_deleting_half(logged_digests, targets[1], work / "dedup", say)
        finally:
            for target in targets:
                target.server.stop()
        logged = [_disk(tree) for tree in trees]
        stored["dedup_without_compression"] = _distinct_bytes(trees)
    return _figures(logged, targets, stored, mismatches, garbage, candidate, trials, sweep_s)


def _sweep(settings, frame, features, lineage, candidate, trials, work: Path) -> list[Path]:
    """Run the study into a scratch SQLite store; return one folder of artifacts per trial."""
    from ml.config import load_pipeline_config
    from ml.experiments.tune import tune
    from ml.train import EXPERIMENT

    previous = mlflow.get_tracking_uri()
    uri = f"sqlite:///{work / 'sweep.db'}"
    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(uri)
        experiment = client.create_experiment(
            EXPERIMENT, artifact_location=(work / "sweep-artifacts").as_uri()
        )
        storage = f"sqlite:///{work / 'optuna.db'}"
        config = load_pipeline_config()
        with _quiet_mlflow():  # 50 copies of log_model's schema hints and export notes
            tune(frame, features, candidate, config, lineage, trials, storage,
                 log_best_model=False, log_models=True)  # fmt: skip
        runs = [
            r for r in client.search_runs([experiment], max_results=10_000)
            if "optuna.trial" in r.data.tags
        ]  # fmt: skip
        models = {m.source_run_id: m for m in client.search_logged_models([experiment])}
        trees = []
        for run in sorted(runs, key=lambda r: int(r.data.tags["optuna.trial"])):
            tree = work / "trees" / run.data.tags["optuna.trial"]
            tree.mkdir(parents=True)
            mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(tree))
            if model := models.get(run.info.run_id):
                mlflow.artifacts.download_artifacts(
                    artifact_uri=model.artifact_location, dst_path=str(tree / "model")
                )
            if any(p.is_file() for p in tree.rglob("*")):
                trees.append(tree)
        return trees
    finally:
        mlflow.set_tracking_uri(previous)


@contextmanager
def _quiet_mlflow() -> Iterator[None]:
    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)


def _log_interleaved(trees: list[Path], targets: list[Target], say: Say) -> None:
    for i, tree in enumerate(trees):
        for target in targets if i % 2 == 0 else targets[::-1]:
            client = MlflowClient(target.uri)
            run_id = client.create_run(target.experiment_id).info.run_id
            started = time.perf_counter()
            client.log_artifacts(run_id, str(tree))
            target.log_s.append(time.perf_counter() - started)
            client.set_terminated(run_id)
            target.runs.append(run_id)
        if (i + 1) % 10 == 0:
            say(f"logged {i + 1}/{len(trees)} trials into both stores")


def _load_interleaved(
    logged: list[dict[Path, str]], targets: list[Target], say: Say, rounds: int = 3
) -> int:
    """Download every run from both servers ``rounds`` times, alternating which goes first;
    return the files that differ from what was logged."""
    mismatches = 0
    for i, digests in [(i, d) for _ in range(rounds) for i, d in enumerate(logged)]:
        for target in targets if i % 2 == 0 else targets[::-1]:
            with tempfile.TemporaryDirectory() as folder:
                started = time.perf_counter()
                MlflowClient(target.uri).download_artifacts(target.runs[i], "", folder)
                target.load_s.append(time.perf_counter() - started)
                mismatches += _differences(digests, Path(folder))
    say(f"loaded {len(logged)} runs {rounds}× from both stores; files differing: {mismatches}")
    return mismatches


def _collect_after_deleting_half(logged, target: Target, home: Path, say: Say) -> dict:
    """Delete the even trials' artifacts through the server, collect, reload the odd ones."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    client = MlflowClient(target.uri)
    mlflow.set_tracking_uri(target.uri)  # the proxy repository resolves its server from here
    before = _disk(home / "artifacts")
    for run_id in target.runs[::2]:
        get_artifact_repository(client.get_run(run_id).info.artifact_uri).delete_artifacts()
    started = time.perf_counter()
    report = collect_garbage(artifact_store_uri(home), grace_s=0)
    seconds = time.perf_counter() - started
    after = _disk(home / "artifacts")
    broken = 0
    for digests, run_id in list(zip(logged, target.runs, strict=True))[1::2]:
        with tempfile.TemporaryDirectory() as folder:
            client.download_artifacts(run_id, "", folder)
            broken += _differences(digests, Path(folder))
    say(f"gc: {report.deleted} blobs ({report.deleted_bytes:,} B) deleted in {seconds:.2f} s; "
        f"kept runs' files differing: {broken}")  # fmt: skip
    return {
        "runs_deleted": len(target.runs[::2]),
        **report.to_dict(),
        "seconds": round(seconds, 3),
        "bytes_before": before["bytes"],
        "bytes_after": after["bytes"],
        "kept_runs_files_differing": broken,
    }


def _digests(folder: Path) -> dict[Path, str]:
    return {p.relative_to(folder): _sha(p) for p in folder.rglob("*") if p.is_file()}


def _differences(want: dict[Path, str], actual: Path) -> int:
    """Files of ``actual`` missing, changed or extra against the digests ``want``."""
    got = _digests(actual)
    missing_or_changed = sum(got.get(path) != digest for path, digest in want.items())
    return missing_or_changed + len(set(got) - set(want))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _disk(folder: Path) -> dict[str, int]:
    files = [p for p in folder.rglob("*") if p.is_file() and ".staging" not in p.parts]
    stats = [p.stat() for p in files]
    return {
        "files": len(files),
        "bytes": sum(s.st_size for s in stats),
        "disk_bytes": sum(s.st_blocks * 512 for s in stats),
    }


def _distinct_bytes(trees: list[Path]) -> dict[str, int]:
    """What storing each distinct content once, uncompressed, would hold (no pointers)."""
    sizes = {_sha(p): p.stat().st_size for tree in trees for p in tree.rglob("*") if p.is_file()}
    return {"files": len(sizes), "bytes": sum(sizes.values())}


def _figures(logged, targets, stored, mismatches, garbage, candidate, trials, sweep_s) -> dict:
    default, dedup = targets
    return {
        "candidate": candidate,
        "trials_requested": trials,
        "trial_runs_with_artifacts": len(logged),
        "files_per_store": sum(tree["files"] for tree in logged),
        "logical_bytes": sum(tree["bytes"] for tree in logged),
        "sweep_seconds": round(sweep_s, 1),
        "stored": stored,
        "bytes_saved_fraction": round(
            1 - stored["dedup"]["bytes"] / stored["default"]["bytes"], 4
        ),
        "bytes_saved_fraction_without_compression": round(
            1 - stored["dedup_without_compression"]["bytes"] / stored["default"]["bytes"], 4
        ),
        "disk_saved_fraction": round(
            1 - stored["dedup"]["disk_bytes"] / stored["default"]["disk_bytes"], 4
        ),
        "log": _timing(default.log_s, dedup.log_s),
        "load": _timing(default.load_s, dedup.load_s),
        "load_files_differing": mismatches,
        "gc": garbage,
    }


def _timing(default: list[float], dedup: list[float]) -> dict:
    """Per-run medians and the per-run ratio dedup ÷ default (below 1: dedup faster)."""
    ratios = sorted(b / a for a, b in zip(default, dedup, strict=True) if a > 0)
    return {
        "default_median_ms": round(statistics.median(default) * 1000, 1),
        "dedup_median_ms": round(statistics.median(dedup) * 1000, 1),
        "default_total_s": round(sum(default), 2),
        "dedup_total_s": round(sum(dedup), 2),
        "ratio_dedup_over_default": {
            "min": round(ratios[0], 3),
            "median": round(statistics.median(ratios), 3),
            "max": round(ratios[-1], 3),
        },
    }
