"""`mlops bench serving`: our server against the servers users would pick instead.

Four servers run at once on this machine, on loopback, each with the same number of worker
processes and the same registered version (``models:/<name>@champion``), and are driven in
turn by the same load generator (``wrk``, a C program, so the client costs little of the shared
CPU) at the same concurrency: rounds alternate A B C D, A B C D, ... so drift in the machine's
state (other load, thermal, caches) touches every server alike, and the JSON gives each round's
ratio of ours to each peer with its min / median / max, not one noisy figure.

* ``ours``: the full path: sticky assignment, the online feature read from Feast, the
  prediction log; requests carry the customer id and the loan fields.
* ``ours_plain``: the same server with its two optimisations off (scikit-learn's own
  ``predict_proba`` instead of the checked numpy form, and no event-loop batching), so their
  effect is measured, not hidden.
* ``kserve``: KServe's Python model server (V1 protocol) on the champion exported with joblib,
  in its own environment (``.tools/peers/kserve``, see :mod:`ml.serve.peers.kserve_model`).
* ``mlflow``: ``mlflow models serve`` on the registered model.

The peers have no feature store, so their requests carry the 10 feature values; that
difference favours them and is stated in the output.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ml.errors import UserError
from ml.settings import Settings

WRK_INSTALL = "ml/serve/install_wrk.sh"
SERVERS = ("ours", "ours_plain", "kserve", "mlflow")
PEERS = SERVERS[1:]
# Our server with the checked numpy scoring and the event-loop batching turned off.
PLAIN_ENV = {"MLOPS_SERVING_COMPILE_MODELS": "false", "MLOPS_SERVING_MAX_BATCH": "1"}
KSERVE_PYTHON = Path(".tools/peers/kserve/bin/python")
KSERVE_INSTALL = "make peers"


def run_serving_bench(
    settings: Settings,
    out_path: Path | None = None,
    *,
    rounds: int = 3,
    duration_s: int = 10,
    concurrency: int = 16,
    workers: int = 2,
    warmup_s: int = 3,
    customers: int = 200,
    say=print,
) -> dict:
    """Benchmark the four servers in interleaved rounds and write ``serving.json``.

    Args:
        settings: Build folder with the materialized feature repo, model name, MLflow URI
            (``settings.mlflow_tracking_uri`` or the current ``mlflow.get_tracking_uri()``).
        out_path: Output JSON (default: ``<build>/bench/serving.json``).
        rounds: How many times each server is measured (A B C D, A B C D, ...).
        duration_s: Measured seconds per server per round (after ``warmup_s`` unmeasured).
        concurrency: Open connections kept busy by wrk (one wrk thread).
        workers: Worker processes for every server.
        customers: Distinct customers cycled through by the requests.
        say: Where progress lines go.

    Returns:
        ``{"servers": {name: medians}, "ratios": {peer: spread}, "rounds": [...], "goal",
        "load"}`` (see :func:`summarize`).
    """
    wrk = require_wrk()
    kserve_python = settings.root / KSERVE_PYTHON
    if not kserve_python.exists():
        raise UserError(
            f"KServe's environment {KSERVE_PYTHON} is missing", f"run {KSERVE_INSTALL}"
        )
    out_path = out_path or settings.bench_dir / "serving.json"
    bodies = _payloads(settings, customers)
    run = {"duration_s": duration_s, "concurrency": concurrency, "warmup_s": warmup_s}
    measured: list[dict[str, dict]] = []
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        tmp_dir = Path(tmp)
        say(f"bench: starting {len(SERVERS)} servers with {workers} workers each")
        urls = _start_servers(stack, settings, workers, tmp_dir, kserve_python)
        for number in range(1, rounds + 1):
            results = {}
            for name in SERVERS:
                results[name] = _drive(
                    wrk, urls[name], bodies[name], tmp_dir / f"{name}.lua", **run
                )
                say(f"bench: round {number}/{rounds} {name}: {_line(results[name])}")
            measured.append(results)
    result = summarize(measured)
    result["load"] = _load_description(settings, wrk, workers, customers, rounds, run)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def require_wrk() -> str:
    """The load generator's path, or a one-line error saying how to install it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise UserError("the load generator `wrk` is not installed", f"run {WRK_INSTALL}")
    return wrk


def _start_servers(stack, settings: Settings, workers: int, tmp_dir: Path, kserve_python: Path):
    """Start the four servers (all kept running); their scoring URLs by name."""
    from ml.serve.server import start_server

    policy = _champion_only_policy()

    def ours(name: str, env: dict | None = None) -> str:
        log = tmp_dir / f"{name}.jsonl"
        server = start_server(settings, policy, workers=workers, log_path=log, env=env)
        return stack.enter_context(server) + "/predict"

    return {
        "ours": ours("ours"),
        "ours_plain": ours("ours_plain", PLAIN_ENV),
        "kserve": stack.enter_context(_kserve_server(settings, kserve_python, workers, tmp_dir)),
        "mlflow": stack.enter_context(_mlflow_server(settings, workers, tmp_dir)) + "/invocations",
    }


def summarize(rounds: list[dict[str, dict]]) -> dict:
    """Per-server medians, per-round ratios of ours to each peer, and the issue's goal.

    A ratio is ours/peer for throughput (higher is better for us) and peer/ours for p99
    (higher is better for us too), each given as its min / median / max over the rounds.
    """
    servers = {
        name: {
            metric: _median([r[name][metric] for r in rounds])
            for metric in ("rps", "p50_ms", "p99_ms")
        }
        | {"errors": sum(r[name]["errors"] for r in rounds)}
        for name in rounds[0]
    }
    ratios = {
        peer: {
            "rps": _spread([_ratio(r["ours"]["rps"], r[peer]["rps"]) for r in rounds]),
            "p99": _spread([_ratio(r[peer]["p99_ms"], r["ours"]["p99_ms"]) for r in rounds]),
        }
        for peer in rounds[0]
        if peer != "ours"
    }
    return {"servers": servers, "ratios": ratios, "rounds": rounds, "goal": _goal(ratios, servers)}


def _goal(ratios: dict, servers: dict) -> dict:
    """Issue 14's goal on the median round: >= 2x KServe at no worse p99, >= 10x MLflow."""
    checks = {
        "rps_vs_kserve_at_least_2x": (ratios.get("kserve", {}).get("rps", {}).get("median") or 0)
        >= 2,
        "p99_no_worse_than_kserve": (ratios.get("kserve", {}).get("p99", {}).get("median") or 0)
        >= 1,
        "rps_vs_mlflow_at_least_10x": (ratios.get("mlflow", {}).get("rps", {}).get("median") or 0)
        >= 10,
        "no_errors": all(s["errors"] == 0 for s in servers.values()),
    }
    return checks | {"met": all(checks.values())}


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 2)


def _spread(values: list[float | None]) -> dict:
    known = [v for v in values if v is not None]
    if not known:
        return {"min": None, "median": None, "max": None, "per_round": values}
    return {
        "min": min(known),
        "median": round(statistics.median(known), 2),
        "max": max(known),
        "per_round": values,
    }


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 3) if known else None


def _line(result: dict) -> str:
    return (
        f"{result['rps']:.0f} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
        f"{result['errors']} errors"
    )


def _load_description(settings, wrk, workers, customers, rounds, run) -> dict:
    return {
        "tool": _wrk_version(wrk),
        "connections": run["concurrency"],
        "threads": 1,
        "rounds": rounds,
        "order": "interleaved: " + " ".join(SERVERS) + " in every round",
        "duration_s": run["duration_s"],
        "warmup_s": run["warmup_s"],
        "workers_per_server": workers,
        "host": "127.0.0.1 (loopback), all servers on this machine, running at once, "
        "measured one at a time",
        "cpus": os.cpu_count(),
        "model": f"models:/{settings.model_name}@champion",
        "payload_ours": "POST /predict {customer_id, loan_amount, term_months}: the server "
        "reads 8 features from the Feast online store per request",
        "ours_plain": "our server with MLOPS_SERVING_COMPILE_MODELS=false (scikit-learn's "
        "predict_proba) and MLOPS_SERVING_MAX_BATCH=1 (no batching)",
        "payload_kserve": "POST /v1/models/<name>:predict {instances: [[10 feature values]]} "
        "(KServe V1 protocol; the model exported with joblib)",
        "payload_mlflow": "POST /invocations dataframe_split with the 10 feature values "
        "(the peers have no feature store, so the client sends them)",
        "distinct_customers": customers,
        "errors": "non-2xx responses + socket errors (connect, read, write, timeout)",
    }


def _champion_only_policy():
    from ml.serve.traffic import TrafficPolicy

    return TrafficPolicy(salt="bench", variants={"champion": {"model": "champion", "weight": 1}})


def _payloads(settings: Settings, customers: int) -> dict[str, list[str]]:
    """Request bodies for the same applications, in each server's format."""
    import numpy as np

    from ml.features.store import model_features, open_store
    from ml.serve.features import OnlineFeatureReader

    reader = OnlineFeatureReader(open_store(settings.feature_repo_dir), settings.feature_service)
    rng = np.random.default_rng(settings.seed)
    ids = _known_customers(settings, reader, customers)
    amounts = rng.uniform(1000, 30000, len(ids)).round(2)
    terms = rng.choice([12, 24, 36, 48, 60], len(ids))
    values, _ = reader.read(ids)
    columns = model_features(settings.feature_service)
    bodies: dict[str, list[str]] = {name: [] for name in SERVERS}
    for i, cid in enumerate(ids):
        ours = {
            "customer_id": int(cid),
            "loan_amount": float(amounts[i]),
            "term_months": int(terms[i]),
        }
        loan = [float(amounts[i]), int(terms[i])]
        row = [None if v != v else float(v) for v in values[i]] + loan
        bodies["ours"].append(json.dumps(ours))
        bodies["kserve"].append(json.dumps({"instances": [row]}))
        bodies["mlflow"].append(
            json.dumps({"dataframe_split": {"columns": columns, "data": [row]}})
        )
    bodies["ours_plain"] = bodies["ours"]
    return bodies


def _known_customers(settings: Settings, reader, n: int) -> list[int]:
    """``n`` customers spread over the demo's population that the online store knows.

    The demo's customers are its generator's (same size and seed); the offline tables may live
    in an object store that is gone after the demo, the online store stays on disk.
    """
    from ml.data import generate

    customers = generate(settings.n_customers, settings.seed, settings.history_days).customers
    ids = sorted(customers["customer_id"].unique())
    ids = [int(i) for i in ids[:: max(1, len(ids) // n)]][:n]
    _, found = reader.read(ids)
    return [c for c, ok in zip(ids, found, strict=True) if ok]


@contextlib.contextmanager
def _mlflow_server(settings: Settings, workers: int, tmp_dir: Path):
    import mlflow

    from ml.serve.runtime import SINGLE_THREAD_ENV

    env = {
        **os.environ,
        **SINGLE_THREAD_ENV,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri or mlflow.get_tracking_uri(),
        # it execs `uvicorn` by name: the one next to this interpreter, activated or not
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve"]
    command += ["-m", f"models:/{settings.model_name}@champion", "--env-manager", "local"]
    command += ["--workers", str(workers), "--host", "127.0.0.1", "--port"]
    with _peer("mlflow models serve", command, env, "/ping", tmp_dir) as url:
        yield url


@contextlib.contextmanager
def _kserve_server(settings: Settings, python: Path, workers: int, tmp_dir: Path):
    """KServe's model server on the champion exported with joblib; yields its predict URL."""
    import joblib
    import mlflow

    from ml.features.store import model_features
    from ml.serve.models import drop_feature_names, resolve_version
    from ml.serve.runtime import SINGLE_THREAD_ENV

    version = resolve_version(settings.model_name, "champion")
    uri = f"models:/{settings.model_name}/{version.version}"
    estimator = mlflow.sklearn.load_model(uri)
    drop_feature_names(estimator, model_features(settings.feature_service), uri)
    exported = tmp_dir / "model.joblib"
    joblib.dump(estimator, exported)
    script = Path(__file__).parent / "peers" / "kserve_model.py"
    command = [str(python), str(script), "--model_name", settings.model_name]
    command += ["--model_path", str(exported), "--workers", str(workers), "--http_port"]
    env = {**os.environ, **SINGLE_THREAD_ENV}
    ready = f"/v1/models/{settings.model_name}"
    with _peer("kserve", command, env, ready, tmp_dir) as url:
        yield f"{url}/v1/models/{settings.model_name}:predict"


@contextlib.contextmanager
def _peer(name: str, command: list[str], env: dict, ready_path: str, tmp_dir: Path):
    """Start a peer server (``command`` ends with its port flag) in its own process group."""
    from ml.serve.server import free_port, stop_process_group

    port = free_port()
    log = tmp_dir / f"{name.split()[0]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        _wait_ready(name, url + ready_path, process, log)
        print(f"bench: {name} ready in {time.monotonic() - started:.0f} s", file=sys.stderr)
        yield url
    finally:
        stop_process_group(process)


def _wait_ready(name: str, url: str, process, log: Path, timeout_s: float = 180.0) -> None:
    import httpx

    from ml.errors import ServiceUnavailable

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise ServiceUnavailable(f"{name} exited: {tail}", f"see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise ServiceUnavailable(f"{name} was not ready within {timeout_s:.0f} s", f"see {log}")


_LUA = """
local bodies = {%s}
local i = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  i = i %% #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""


def _drive(wrk, url, bodies, script, *, duration_s, concurrency, warmup_s) -> dict:
    """Warm up, then run wrk for ``duration_s``; parse throughput, latency, errors."""
    script.write_text(_LUA % ",".join(_lua_string(b) for b in bodies))
    base = [wrk, "-t1", f"-c{concurrency}", "-s", str(script), "--timeout", "5s"]
    if warmup_s:
        subprocess.run([*base, f"-d{warmup_s}s", url], capture_output=True, check=False)
    done = subprocess.run(
        [*base, f"-d{duration_s}s", "--latency", url],
        capture_output=True,
        text=True,
        check=False,
        timeout=duration_s + 60,
    )
    return parse_wrk(done.stdout)


def _lua_string(text: str) -> str:
    return "[==[" + text + "]==]"


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk(output: str) -> dict:
    """``{"rps", "p50_ms", "p99_ms", "errors", "requests"}`` from ``wrk --latency`` output."""

    def latency(pct: str) -> float | None:
        match = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
        return round(float(match.group(1)) * _UNIT_MS[match.group(2)], 3) if match else None

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sockets.groups()) if sockets else 0
    return {
        "rps": round(float(rps.group(1)), 1) if rps else 0.0,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": errors,
        "requests": int(total.group(1)) if total else 0,
    }


def _wrk_version(wrk: str) -> str:
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else "wrk"
