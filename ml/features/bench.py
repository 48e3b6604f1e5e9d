"""Online feature retrieval benchmark: SDK and HTTP feature server, SQLite and Redis.

Each path is ``<sdk|http>_<sqlite|redis>_<entities>``; one client sends requests back to back
(after a warm-up), so ``rps`` is one client's sequential throughput and ``p50_ms``/``p99_ms``
are per-request latencies as the caller sees them. A pyinstrument profile of the SDK path says
where the time goes; the HTTP-minus-SDK difference is the server's own cost (JSON, ASGI, TCP).
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd

from ml.data.generate import generate
from ml.data.validate import validate
from ml.features import store as feature_store
from ml.features.server import feature_server

WARMUP = 30


def run_features_bench(
    out: Path,
    work_dir: Path,
    service: str = "credit_v1",
    requests: int = 1000,
    batch_sizes: Sequence[int] = (1, 10, 100),
    workers: int = 1,
    n_customers: int = 2000,
    postgres_url: str | None = None,
    redis_url: str | None = None,
    profile: bool = True,
    seed: int = 42,
) -> dict:
    """Measure online retrieval and write the results as JSON to ``out``.

    Args:
        out: the JSON file (e.g. ``build/bench/features.json``).
        work_dir: scratch folder for the feature repos and server logs.
        service: the model's feature service.
        requests: requests per path for one entity (batches get a fifth, at least 100).
        batch_sizes: entities per request.
        workers: ``feast serve`` worker processes.
        n_customers: size of the generated dataset materialized into the stores.
        postgres_url, redis_url: the production backends; without both, Redis paths are
            skipped (listed under ``skipped``).
        profile: also profile the SDK path for one entity (pyinstrument).
        seed: dataset and request sampling seed.

    Returns:
        The written document: ``{name: {"p50_ms", "p99_ms", "rps"}, ..., "setup": ...}``.
    """
    apply_defaults()
    data = generate(n_customers, seed=seed, days=180)
    tables = {n: validate(n, f).accepted for n, f in data.tables().items()}
    window = (data.start - pd.Timedelta(days=365), data.end + pd.Timedelta(days=1))
    customers = tables["customers"]["customer_id"].to_numpy()
    rng = np.random.default_rng(seed)
    paths: dict[str, dict] = {}
    profiles: dict[str, dict] = {}
    backends = {"sqlite": ("embedded", {})}
    if postgres_url and redis_url:
        # A project of its own per run: the SQL registry keeps every project's version history,
        # and re-applying an old project's views collides with it (Feast 0.67).
        project = f"bench_{int(time.time())}"
        env = feature_store.production_environment(postgres_url, redis_url, project)
        backends["redis"] = ("production", env)
    for backend, (environment, env) in backends.items():
        with _environment(env):
            repo = _prepare(work_dir / backend, environment, tables, window)
            store = feature_store.open_store(repo)
            service_obj = store.get_feature_service(service)
            for size in batch_sizes:
                n = requests if size == 1 else max(100, requests // 5)
                paths[f"sdk_{backend}_{size}"] = _measure(
                    _sdk_call(store, service_obj, customers, rng, size), n
                )
            if profile:
                profiles[f"sdk_{backend}_1"] = _profile(store, service_obj, customers, rng)
            with feature_server(repo, workers, env) as url:
                paths.update(
                    _http_paths(url, service, backend, customers, rng, batch_sizes, requests)
                )
    # One top-level entry per path (the agreed shape), then how they were measured.
    document = {
        **paths,
        "skipped": [] if "redis" in backends else ["redis: no postgres_url/redis_url given"],
        "where_time_goes": _where_time_goes(paths, profiles),
        "profiles": profiles,
        "setup": {
            "service": service,
            "workers": workers,
            "requests_one_entity": requests,
            "customers": n_customers,
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "client": "one sequential client; SDK in-process; HTTP via httpx with keep-alive "
            "(ml.features.client: a dropped connection is retried once)",
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=1))
    return document


def apply_defaults() -> None:
    from ml.settings import apply_process_defaults

    apply_process_defaults()


class _environment(ExitStack):
    """Set variables for the duration of a block (the SDK and the server read them)."""

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__()
        self._env, self._saved = env, {k: os.environ.get(k) for k in env}

    def __enter__(self):
        os.environ.update(self._env)
        return super().__enter__()

    def __exit__(self, *exc):
        for key, value in self._saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        return super().__exit__(*exc)


def _prepare(repo: Path, environment: str, tables, window) -> Path:
    feature_store.prepare_repo(repo, environment)
    feature_store.ingest(repo, tables)
    store = feature_store.open_store(repo)
    feature_store.apply(store)
    feature_store.materialize(store, window[0].to_pydatetime(), window[1].to_pydatetime())
    return repo


def _sdk_call(store, service_obj, customers, rng, size: int) -> Callable[[], object]:
    def call():
        rows = [{"customer_id": int(c)} for c in rng.choice(customers, size)]
        return store.get_online_features(features=service_obj, entity_rows=rows).to_dict()

    return call


def _measure(call: Callable[[], object], n: int) -> dict:
    for _ in range(WARMUP):
        call()
    latencies = np.empty(n)
    started = time.perf_counter()
    for i in range(n):
        begin = time.perf_counter()
        call()
        latencies[i] = time.perf_counter() - begin
    elapsed = time.perf_counter() - started
    return {
        "p50_ms": round(float(np.percentile(latencies, 50)) * 1000, 3),
        "p99_ms": round(float(np.percentile(latencies, 99)) * 1000, 3),
        "rps": round(n / elapsed, 1),
        "requests": n,
    }


def _http_paths(url, service, backend, customers, rng, batch_sizes, requests) -> dict:
    from ml.features.client import FeatureServerClient
    from ml.features.lineage import service_contract

    # Explicit refs instead of the service name: the server then skips a registry lookup that
    # costs it one thread-pool hand-off per request (the dominant cost on a busy 2-core box).
    refs = service_contract(service)[1]
    results = {}
    # One persistent connection, as a serving process would hold.
    with FeatureServerClient(url, budget_s=5) as client:
        for size in batch_sizes:
            n = requests if size == 1 else max(100, requests // 5)
            dropped = client.dropped

            def http(size=size):
                client.online_features(refs, [int(c) for c in rng.choice(customers, size)])

            results[f"http_{backend}_{size}"] = {
                **_measure(http, n),
                "dropped_connections": client.dropped - dropped,  # each retried once
            }
    return results


def _profile(store, service_obj, customers, rng, n: int = 300) -> dict:
    """Share of SDK time (one entity) per library, from a pyinstrument profile."""
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(n):
        rows = [{"customer_id": int(rng.choice(customers))}]
        store.get_online_features(features=service_obj, entity_rows=rows).to_dict()
    profiler.stop()
    shares: dict[str, float] = {}
    total = 0.0
    for frame, bucket in _walk(profiler.last_session.root_frame(), "other"):
        total += frame.total_self_time
        shares[bucket] = shares.get(bucket, 0.0) + frame.total_self_time
    top = sorted(shares.items(), key=lambda kv: -kv[1])[:8]
    return {name: round(100 * t / total, 1) for name, t in top if total}


def _walk(frame, parent_bucket: str):
    # pyinstrument's synthetic "[self]" frames belong to their parent's module.
    bucket = parent_bucket if frame.is_synthetic else _bucket(frame)
    yield frame, bucket
    for child in frame.children:
        yield from _walk(child, bucket)


def _bucket(frame) -> str:
    """Group a frame by library and, inside Feast, by module (what a reader can act on)."""
    path = (frame.file_path or "").replace("\\", "/")
    if "/feast/" in path:
        return "feast." + path.split("/feast/", 1)[1].removesuffix(".py").replace("/", ".")
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1].split("/", 1)[0].removesuffix(".py")
    return frame.function or "other"


def _where_time_goes(paths: dict, profiles: dict) -> list[str]:
    notes = []
    for backend in ("sqlite", "redis"):
        sdk, http = paths.get(f"sdk_{backend}_1"), paths.get(f"http_{backend}_1")
        if sdk and http:
            notes.append(
                f"{backend}, 1 entity: SDK p50 {sdk['p50_ms']} ms; the HTTP server adds "
                f"{http['p50_ms'] - sdk['p50_ms']:.2f} ms at p50 (ASGI, JSON, loopback TCP)"
            )
        if profiles.get(f"sdk_{backend}_1"):
            top = ", ".join(f"{k} {v}%" for k, v in list(profiles[f"sdk_{backend}_1"].items())[:5])
            notes.append(f"{backend} SDK self time by module: {top}")
    return notes
