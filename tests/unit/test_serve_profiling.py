"""The serving latency recorder (ml/serve/profiling.py) and the profile bench's variant syntax."""

import asyncio
import gc
import time

import pytest

from ml.errors import UserError
from ml.serve.profile_bench import parse_variants
from ml.serve.profiling import Profile, summarize
from ml.serve.service import LoopBatcher


def test_a_profiled_batcher_records_requests_waits_sizes_and_loop_lag(tmp_path):
    profile = Profile(tmp_path / "p")

    def score_each(requests):
        time.sleep(0.02)  # a slow batch: the requests that arrive meanwhile wait for it
        return [r * 10 for r in requests]

    async def main():
        batcher = LoopBatcher(profile.timed("batch", score_each), 64, profile)
        first = asyncio.ensure_future(batcher.submit(1))
        await asyncio.sleep(0.005)  # the first batch is scoring now
        rest = await asyncio.gather(*(batcher.submit(r) for r in (2, 3)))
        await asyncio.sleep(0.02)  # a few loop-lag ticks
        return [await first, *rest]

    assert asyncio.run(main()) == [10, 20, 30]
    gc.collect()
    profile.write()
    figures = summarize(tmp_path / "p")
    assert figures["request"]["count"] == 3 and figures["request"]["max"] >= 20
    assert figures["size"]["count"] == 2 and figures["size"]["max"] == 2  # 1, then 2 and 3
    assert figures["wait"]["max"] >= 10, "requests 2 and 3 waited for the first batch"
    assert figures["batch"]["count"] == 2 and figures["batch"]["p50"] >= 20
    assert figures["loop_lag"]["count"] >= 1 and figures["gc2"]["count"] >= 1
    assert figures["worker_request_share"] == [1.0]


def test_variants_are_name_colon_settings():
    assert parse_variants(["ours:", "small:MLOPS_SERVING_MAX_BATCH=4,MLOPS_X=y"]) == {
        "ours": {},
        "small": {"MLOPS_SERVING_MAX_BATCH": "4", "MLOPS_X": "y"},
    }
    with pytest.raises(UserError, match="not name:KEY=VALUE"):
        parse_variants(["MLOPS_SERVING_MAX_BATCH=4"])
