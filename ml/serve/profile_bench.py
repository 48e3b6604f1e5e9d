"""``mlops bench serving-profile``: where our server's p99 comes from, variant by variant.

Each variant is our full-path server (the same champion, workers and load as ``mlops bench
serving``) with some settings changed, recording its latency parts (:mod:`ml.serve.profiling`).
All variants run at once and are driven in interleaved rounds by ``wrk``; then they are stopped
(each worker writes its recording) and each variant gets wrk's figures per round and the
server-side percentiles of every part: queueing before a batch, the batch's scoring (feature
read, model, log), garbage-collection pauses, event-loop lag, and each worker's share.
The recordings include the 3 s warm-up before each measured run.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
from pathlib import Path

from ml.errors import UserError
from ml.serve import bench
from ml.serve.profiling import summarize
from ml.settings import Settings

PROFILE_ENV = "MLOPS_SERVING_PROFILE_DIR"
# name -> settings changed from the defaults; each isolates one suspect of the tail.
DEFAULT_VARIANTS: dict[str, dict[str, str]] = {
    "ours": {},
    "no_batching": {"MLOPS_SERVING_MAX_BATCH": "1"},
}


def run_profile_bench(
    settings: Settings,
    variants: dict[str, dict[str, str]] | None = None,
    *,
    rounds: int = 3,
    duration_s: int = 10,
    concurrency: int = 16,
    workers: int = 2,
    customers: int = 200,
    say=print,
) -> dict:
    """Profile ``variants`` (default :data:`DEFAULT_VARIANTS`); write ``serving-profile.json``."""
    from ml.serve.server import start_server

    variants = variants or DEFAULT_VARIANTS
    wrk = bench.require_wrk()
    bodies = bench._payloads(settings, customers)["ours"]
    run = {"duration_s": duration_s, "concurrency": concurrency, "warmup_s": 3}
    measured: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with contextlib.ExitStack() as stack:
            say(f"profile: starting {len(variants)} variants with {workers} workers each")
            urls = {
                name: stack.enter_context(
                    start_server(
                        settings,
                        bench._champion_only_policy(),
                        workers=workers,
                        log_path=folder / f"{name}.jsonl",
                        env={**env, PROFILE_ENV: str(folder / name)},
                    )
                )
                + "/predict"
                for name, env in variants.items()
            }
            for number in range(1, rounds + 1):
                for name in variants:
                    script = folder / f"{name}.lua"
                    measured[name].append(bench._drive(wrk, urls[name], bodies, script, **run))
                    say(f"profile: round {number}/{rounds} {name}: "
                        f"{bench._line(measured[name][-1])}")  # fmt: skip
        # The servers have stopped: every worker has written its recording.
        result = {
            name: {
                "settings": variants[name],
                "rounds": measured[name],
                "median": _medians(measured[name]),
                "server_ms": summarize(folder / name),
            }
            for name in variants
        }
    out = settings.bench_dir / "serving-profile.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    load = {**run, "workers": workers, "customers": customers, "rounds": rounds}
    out.write_text(json.dumps({"load": load, "variants": result}, indent=1) + "\n")
    return result


def _medians(rounds: list[dict]) -> dict:
    return {
        key: statistics.median(r[key] for r in rounds if r[key] is not None)
        for key in ("rps", "p50_ms", "p99_ms", "errors")
    }


def parse_variants(specs: list[str]) -> dict[str, dict[str, str]]:
    """``name:KEY=VALUE,KEY=VALUE`` (``name:`` alone: the defaults) into variants."""
    variants: dict[str, dict[str, str]] = {}
    for spec in specs:
        name, sep, assignments = spec.partition(":")
        pairs = [a.partition("=") for a in assignments.split(",") if a]
        if not sep or not name or any(not key or not eq for key, eq, _ in pairs):
            raise UserError(
                f"--variant {spec!r} is not name:KEY=VALUE[,KEY=VALUE]",
                "e.g. --variant no_batching:MLOPS_SERVING_MAX_BATCH=1 (or ours: for defaults)",
            )
        variants[name] = {key: value for key, _, value in pairs}
    return variants
