"""The e2e's API client: runs inside a container on the e2e network and calls a Service by name.

Stand-alone on purpose (standard library only): it is mounted into a container of the ML image
and run with its Python, so traffic really goes through the Service's cluster DNS name, as a
client in the cluster would send it.

    python client.py URL REQUESTS_JSON [--concurrency N] [--deadline-s S] [--rate R] [--soak-s S]

``REQUESTS_JSON`` is a list of request bodies for ``POST URL``. Prints one JSON object: status
codes, answers per variant and per model version, shadow-free answers, latency percentiles.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor


def _post(url: str, body: dict, timeout: float) -> tuple[int, dict | None, float]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.loads(response.read() or b"null")
            return response.status, answer, time.perf_counter() - start
    except urllib.error.HTTPError as error:
        return error.code, None, time.perf_counter() - start
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return 0, None, time.perf_counter() - start


def run(
    url: str, bodies: list[dict], concurrency: int, deadline_s: float, rate: float = 0.0
) -> dict:
    """Send every body (or until the deadline); ``rate`` > 0 paces sends to that many per s."""
    stop_at = time.monotonic() + deadline_s
    started = time.monotonic()
    codes: Counter[int] = Counter()
    variants: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    latencies: list[float] = []

    def one(indexed: tuple[int, dict]) -> tuple[int, dict | None, float]:
        index, body = indexed
        if rate > 0:
            time.sleep(max(0.0, started + index / rate - time.monotonic()))
        if time.monotonic() > stop_at:
            return -1, None, 0.0
        return _post(url, body, timeout=10)

    with ThreadPoolExecutor(concurrency) as pool:
        for code, answer, seconds in pool.map(one, enumerate(bodies)):
            codes[code] += 1
            if code == 200 and answer:
                variants[str(answer.get("variant"))] += 1
                versions[str(answer.get("model_version"))] += 1
                latencies.append(seconds)
    return {
        "sent": len(bodies),
        "codes": {str(k): v for k, v in sorted(codes.items())},
        "variants": dict(variants),
        "model_versions": dict(versions),
        **_percentiles(latencies),
        "not_sent_deadline": codes.get(-1, 0),
    }


def soak(url: str, bodies: list[dict], concurrency: int, duration_s: float) -> dict:
    """Sustained load: ``concurrency`` senders cycle through ``bodies`` for ``duration_s``."""
    stop_at = time.monotonic() + duration_s
    started = time.monotonic()
    lock = threading.Lock()
    codes: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    latencies: list[float] = []

    def sender(offset: int) -> None:
        index = offset
        while time.monotonic() < stop_at:
            code, answer, seconds = _post(url, bodies[index % len(bodies)], timeout=10)
            index += concurrency
            with lock:
                codes[code] += 1
                if code == 200 and answer:
                    versions[str(answer.get("model_version"))] += 1
                    latencies.append(seconds)

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return {
        "sent": sum(codes.values()),
        "codes": {str(k): v for k, v in sorted(codes.items())},
        "model_versions": dict(versions),
        "seconds": round(elapsed, 1),
        "answered_per_s": round(codes.get(200, 0) / elapsed, 1),
        **_percentiles(latencies),
    }


def _percentiles(latencies: list[float]) -> dict:
    latencies = sorted(latencies)

    def pct(q: float) -> float | None:
        return round(latencies[int(q * (len(latencies) - 1))] * 1000, 2) if latencies else None

    return {"p50_ms": pct(0.5), "p99_ms": pct(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("requests")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--deadline-s", type=float, default=120.0)
    parser.add_argument("--rate", type=float, default=0.0, help="Requests per second (0: max).")
    parser.add_argument(
        "--soak-s", type=float, default=0.0, help="Cycle through the bodies for S seconds."
    )
    args = parser.parse_args()
    with open(args.requests) as handle:
        bodies = json.load(handle)
    if args.soak_s > 0:
        result = soak(args.url, bodies, args.concurrency, args.soak_s)
    else:
        result = run(args.url, bodies, args.concurrency, args.deadline_s, args.rate)
    json.dump(result, sys.stdout)


if __name__ == "__main__":
    main()
