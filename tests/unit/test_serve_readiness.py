"""A pod is ready only when every worker of its server can answer."""

import os
import subprocess
import sys

from ml.serve.readiness import WorkerReadiness


def test_ready_only_when_every_live_worker_is_marked(tmp_path):
    states = {"a": True, "b": False}
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine = WorkerReadiness(2, lambda: states["a"], tmp_path)
        other = WorkerReadiness(2, lambda: states["b"], tmp_path, pid=peer.pid)
        other.refresh()
        assert not mine.all_ready()  # the other worker is still loading
        states["b"] = True
        other.refresh()
        assert mine.all_ready()
        states["a"] = False
        assert not mine.all_ready() and not (tmp_path / str(os.getpid())).exists()
    finally:
        peer.kill()
        peer.wait()


def test_a_dead_workers_mark_does_not_count(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / str(dead.pid)).touch()  # left by a worker that crashed
    assert not WorkerReadiness(2, lambda: True, tmp_path).all_ready()
    assert WorkerReadiness(1, lambda: True, tmp_path).all_ready()


def test_the_watch_thread_marks_a_worker_no_probe_reaches(tmp_path):
    import time

    readiness = WorkerReadiness(1, lambda: True, tmp_path)
    readiness.watch(every_s=0.01)
    deadline = time.monotonic() + 5
    while not (tmp_path / str(os.getpid())).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert readiness.ready_workers() == 1
    readiness.close()
    assert readiness.ready_workers() == 0
