"""The serving bench's arithmetic: wrk's output parsed, rounds summarised into ratios."""

from __future__ import annotations

import pytest

from ml.serve.bench import SERVERS, parse_wrk, summarize

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:41234/predict
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.21ms    1.10ms  31.02ms   90.12%
    Req/Sec     3.81k   210.33     4.10k    71.00%
  Latency Distribution
     50%    3.98ms
     75%    4.40ms
     90%    5.10ms
     99%  812.00us
  37912 requests in 10.00s, 6.11MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:   3791.20
Transfer/sec:    625.53KB
"""


def test_wrk_output_gives_throughput_latency_and_every_error():
    parsed = parse_wrk(WRK_OUTPUT)
    assert parsed == {
        "rps": 3791.2,
        "p50_ms": 3.98,
        "p99_ms": 0.812,  # microseconds converted
        "errors": 7,  # 4 non-2xx + 3 socket errors
        "requests": 37912,
    }


def test_unparseable_output_is_zero_throughput_not_a_crash():
    assert parse_wrk("connection refused")["rps"] == 0.0


def _round(ours_rps, kserve_rps, p99_ours, p99_kserve, errors=0):
    result = {name: {"rps": 100.0, "p50_ms": 5.0, "p99_ms": 20.0, "errors": 0} for name in SERVERS}
    result["ours"] = {"rps": ours_rps, "p50_ms": 2.0, "p99_ms": p99_ours, "errors": errors}
    result["kserve"] = {"rps": kserve_rps, "p50_ms": 3.0, "p99_ms": p99_kserve, "errors": 0}
    return result


def test_ratios_are_per_round_with_min_median_max():
    rounds = [_round(4000, 2000, 10, 12), _round(3000, 2000, 12, 12), _round(5000, 2000, 8, 16)]
    summary = summarize(rounds)
    kserve = summary["ratios"]["kserve"]
    assert kserve["rps"] == {"min": 1.5, "median": 2.0, "max": 2.5, "per_round": [2.0, 1.5, 2.5]}
    # p99 ratio is peer / ours: above 1 means our tail is shorter
    assert kserve["p99"]["per_round"] == [1.2, 1.0, 2.0]
    assert kserve["p99"]["median"] == 1.2
    assert summary["servers"]["ours"]["rps"] == 4000
    assert summary["servers"]["ours"]["p99_ms"] == 10
    assert summary["ratios"]["mlflow"]["rps"]["median"] == 40.0
    assert set(summary["ratios"]) == set(SERVERS) - {"ours"}


@pytest.mark.parametrize(
    ("rounds", "met"),
    [
        ([_round(4000, 2000, 10, 12)] * 3, True),
        ([_round(3000, 2000, 10, 12)] * 3, False),  # only 1.5x KServe
        ([_round(4000, 2000, 14, 12)] * 3, False),  # p99 worse than KServe's
        ([_round(4000, 2000, 10, 12, errors=1)] * 3, False),  # an error
    ],
)
def test_the_goal_is_judged_on_the_median_round(rounds, met):
    assert summarize(rounds)["goal"]["met"] is met


def test_a_server_that_answered_nothing_has_no_ratio():
    rounds = [_round(4000, 0.0, 10, 12)]
    rounds[0]["kserve"]["p99_ms"] = None
    summary = summarize(rounds)
    assert summary["ratios"]["kserve"]["rps"]["median"] is None
    assert summary["goal"]["met"] is False
