"""`mlops bench serving`: our server vs ``mlflow models serve``, same model, same load, one run.

Both servers run on this machine on loopback, one after the other, serving the same registered
version (``models:/<name>@champion``) with the same number of worker processes, and are driven
by the same load generator (``wrk``, a C program, so the client costs little of the shared CPU)
with the same concurrency and duration. The difference in what a request carries is inherent
and stated in the output: MLflow has no feature store, so its requests carry the 10 feature
values; ours carry the customer id and the loan fields, and our server reads the 8 customer
features from Feast's online store on every request.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ml.errors import UserError
from ml.settings import Settings

WRK_INSTALL = "ml/serve/install_wrk.sh"


def run_serving_bench(
    settings: Settings,
    out_path: Path | None = None,
    *,
    duration_s: int = 15,
    concurrency: int = 16,
    workers: int = 2,
    warmup_s: int = 3,
    customers: int = 200,
) -> dict:
    """Benchmark both servers and write ``serving.json``.

    Args:
        settings: Build folder with the materialized feature repo, model name, MLflow URI
            (``settings.mlflow_tracking_uri`` or the current ``mlflow.get_tracking_uri()``).
        out_path: Output JSON (default: ``<build>/bench/serving.json``).
        duration_s: Measured seconds per server (after ``warmup_s`` unmeasured seconds).
        concurrency: Open connections kept busy by wrk (one wrk thread).
        workers: Worker processes for both servers.
        customers: Distinct customers cycled through by the requests.

    Returns:
        ``{"ours": {...}, "mlflow": {...}, "ratio": ours_rps / mlflow_rps, "load": {...}}``.
    """
    from ml.serve.server import start_server

    wrk = shutil.which("wrk")
    if wrk is None:
        raise UserError("the load generator `wrk` is not installed", f"run {WRK_INSTALL}")
    out_path = out_path or settings.bench_dir / "serving.json"
    bodies_ours, bodies_mlflow = _payloads(settings, customers)
    policy = _champion_only_policy()
    run = {"duration_s": duration_s, "concurrency": concurrency, "warmup_s": warmup_s}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        with start_server(
            settings, policy, workers=workers, log_path=tmp_dir / "predictions.jsonl"
        ) as url:
            ours = _drive(wrk, f"{url}/predict", bodies_ours, tmp_dir / "ours.lua", **run)
        with _mlflow_server(settings, workers, tmp_dir) as url:
            theirs = _drive(wrk, f"{url}/invocations", bodies_mlflow, tmp_dir / "ml.lua", **run)
    result = {
        "ours": ours,
        "mlflow": theirs,
        "ratio": round(ours["rps"] / theirs["rps"], 2) if theirs["rps"] else None,
        "load": {
            "tool": _wrk_version(wrk),
            "connections": concurrency,
            "threads": 1,
            "duration_s": duration_s,
            "warmup_s": warmup_s,
            "workers_per_server": workers,
            "host": "127.0.0.1 (loopback), both servers on this machine, one after the other",
            "cpus": os.cpu_count(),
            "model": f"models:/{settings.model_name}@champion",
            "payload_ours": "POST /predict {customer_id, loan_amount, term_months}: the server "
            "reads 8 features from the Feast online store per request",
            "payload_mlflow": "POST /invocations dataframe_split with the 10 feature values "
            "(mlflow has no feature store, so the client sends them)",
            "distinct_customers": customers,
            "errors": "non-2xx responses + socket errors (connect, read, write, timeout)",
        },
    }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _champion_only_policy():
    from ml.serve.traffic import TrafficPolicy

    return TrafficPolicy(salt="bench", variants={"champion": {"model": "champion", "weight": 1}})


def _payloads(settings: Settings, customers: int) -> tuple[list[str], list[str]]:
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
    ours, theirs = [], []
    for i, cid in enumerate(ids):
        ours.append(
            json.dumps(
                {
                    "customer_id": int(cid),
                    "loan_amount": float(amounts[i]),
                    "term_months": int(terms[i]),
                }
            )
        )
        row = [None if v != v else float(v) for v in values[i]]
        row += [float(amounts[i]), int(terms[i])]
        theirs.append(json.dumps({"dataframe_split": {"columns": columns, "data": [row]}}))
    return ours, theirs


def _known_customers(settings: Settings, reader, n: int) -> list[int]:
    import pandas as pd

    profile = settings.feature_repo_dir / "data" / "customer_profile.parquet"
    ids = sorted(pd.read_parquet(profile, columns=["customer_id"])["customer_id"].unique())
    ids = [int(i) for i in ids[:: max(1, len(ids) // n)]][:n]
    _, found = reader.read(ids)
    return [c for c, ok in zip(ids, found, strict=True) if ok]


@contextlib.contextmanager
def _mlflow_server(settings: Settings, workers: int, tmp_dir: Path):
    import mlflow

    from ml.serve.runtime import SINGLE_THREAD_ENV
    from ml.serve.server import free_port, stop_process_group

    port = free_port()
    env = {
        **os.environ,
        **SINGLE_THREAD_ENV,
        "MLFLOW_TRACKING_URI": settings.mlflow_tracking_uri or mlflow.get_tracking_uri(),
    }
    command = [sys.executable, "-m", "mlflow", "models", "serve"]
    command += ["-m", f"models:/{settings.model_name}@champion", "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    log = tmp_dir / "mlflow-serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_mlflow(url, process, log)
        yield url
    finally:
        stop_process_group(process)


def _wait_mlflow(url, process, log, timeout_s: float = 180.0) -> None:
    import httpx

    from ml.errors import ServiceUnavailable

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:]
            raise ServiceUnavailable(f"mlflow models serve exited: {tail}", f"see {log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    raise ServiceUnavailable("mlflow models serve was not ready in time", f"see {log}")


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
