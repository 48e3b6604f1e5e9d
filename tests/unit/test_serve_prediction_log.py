"""Shipped prediction logs: bounded batches, time-sorted keys, bounded spool, nothing lost."""

import gzip
import json
import re
import time

import pytest

from ml.serve.prediction_log import ShippingPredictionLog

KEY = re.compile(r"^predictions/\d{8}T\d{9}-pod-a-\d+-\d{6}\.jsonl\.gz$")


class _Bucket:
    def __init__(self, fail: bool = False):
        self.objects: dict[str, bytes] = {}
        self.fail = fail

    def put_bytes(self, key, data, content_type=""):
        if self.fail:
            raise ConnectionError("store down")
        self.objects[key] = data

    def records(self):
        return [
            json.loads(line)
            for key in sorted(self.objects)
            for line in gzip.decompress(self.objects[key]).splitlines()
        ]


def _log(bucket, tmp_path, **kw):
    return ShippingPredictionLog(bucket, tmp_path, "pod-a", flush_s=0.02, **kw)


@pytest.mark.parametrize("n, batch, batches", [(10, 4, 3), (7, 100, 1)])
def test_batches_are_bounded_time_sorted_and_lossless_on_close(tmp_path, n, batch, batches):
    bucket = _Bucket()
    log = _log(bucket, tmp_path, batch_records=batch)
    for i in range(n):
        log.write({"i": i, "application_id": i})
        time.sleep(0.03)  # several flushes
    log.close()
    assert [r["i"] for r in bucket.records()] == list(range(n))
    assert len(bucket.objects) == batches and all(KEY.match(k) for k in bucket.objects)
    assert log.shipped == n and log.spool_bytes() == 0  # shipped segments are deleted


def test_age_closes_a_batch_before_it_is_full(tmp_path):
    bucket = _Bucket()
    log = _log(bucket, tmp_path, batch_records=1000, batch_s=0.1)
    log.write({"i": 1})
    deadline = time.monotonic() + 5
    while not bucket.objects and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert len(bucket.records()) == 1
    finally:
        log.close()


def test_store_down_keeps_the_spool_bounded_and_counts_drops(tmp_path):
    bucket = _Bucket(fail=True)
    log = _log(bucket, tmp_path, batch_records=50, max_spool_bytes=2**20)
    record = {"pad": "x" * 1000}
    for _ in range(3000):  # ~3 MB of records against a 1 MiB cap
        log.write(record)
    log.close()
    assert log.spool_bytes() <= 2**20 + 60_000  # the cap, plus at most one segment
    assert log.dropped > 1000 and log.shipped == 0
    bucket.fail = False
    orphans = len(list(log.spool.glob("*.jsonl")))
    log.spool.rename(tmp_path / "pod-a-999999999")  # as if that worker had died
    _log(bucket, tmp_path).close()  # a sibling (or restarted) worker ships the orphans
    assert len(bucket.objects) == orphans > 0


def test_buffer_overflow_drops_instead_of_blocking(tmp_path):
    log = _log(_Bucket(), tmp_path, max_queue=5)
    log._stop.set()  # no background flush: the buffer only fills
    log._thread.join()
    for i in range(8):
        log.write({"i": i})
    assert log.dropped == 3


def test_a_reader_skips_the_half_written_last_line(tmp_path):
    from ml.serve.prediction_log import PredictionLog, read_prediction_log

    path = tmp_path / "log.jsonl"
    log = PredictionLog(path)
    log.write({"request_id": "a", "timestamp": "2026-01-01T00:00:00+00:00", "shadow": False})
    log.close()
    with path.open("a") as f:  # a writer caught mid-write by the reader
        f.write('{"request_id": "b", "timestamp": "2026-01-0')
    assert list(read_prediction_log(path)["request_id"]) == ["a"]
