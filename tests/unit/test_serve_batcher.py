"""The /predict batcher: batches what arrives together, scores off the loop, bounded in time."""

import asyncio
import threading

import pytest

from ml.serve.service import LoopBatcher, ScoringTimeout


def test_requests_arriving_together_are_scored_in_one_call():
    calls = []

    def score_each(requests):
        calls.append(list(requests))
        return [r * 10 for r in requests]

    async def main():
        batcher = LoopBatcher(score_each)
        return await asyncio.gather(*(batcher.submit(r) for r in (1, 2, 3)))

    assert asyncio.run(main()) == [10, 20, 30] and calls == [[1, 2, 3]]


def test_a_stalled_read_times_out_without_blocking_the_loop():
    stalled = threading.Event()

    def score_each(requests):
        stalled.wait(2)  # a feature store that does not answer
        return list(requests)

    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        running = asyncio.create_task(ticker())
        with pytest.raises(ScoringTimeout, match=r"within 0\.2s"):
            await LoopBatcher(score_each, timeout_s=0.2).submit(1)
        running.cancel()
        stalled.set()
        return ticks

    assert asyncio.run(main()) >= 10  # the loop kept serving while the read was stuck
