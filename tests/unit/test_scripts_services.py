"""scripts/services.sh really starts PostgreSQL and Redis on loopback and writes the env file.

Starting is idempotent and this test never stops the services: other integration tests in the
same run read build/services/env.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "services.sh"


def _services_or_skip() -> None:
    if shutil.which("redis-server") and list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        return
    why = "PostgreSQL/Redis not installed — run `scripts/services.sh install`"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def _sh(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_usage_error_exits_2() -> None:
    assert _sh("bogus").returncode == 2


@pytest.mark.integration
def test_start_writes_env_with_working_loopback_urls() -> None:
    _services_or_skip()
    started = _sh("start")
    assert started.returncode == 0, started.stderr
    assert _sh("status").returncode == 0
    env = dict(
        line.split("=", 1) for line in (ROOT / "build/services/env").read_text().splitlines()
    )
    pg, redis_url = urlparse(env["MLOPS_TEST_POSTGRES_URL"]), env["MLOPS_TEST_REDIS_URL"]
    assert pg.hostname == "127.0.0.1" and urlparse(redis_url).hostname == "127.0.0.1"
    assert pg.password and len(pg.password) >= 20 and pg.password not in {"postgres", "password"}

    import psycopg
    import redis

    with psycopg.connect(env["MLOPS_TEST_POSTGRES_URL"], connect_timeout=5) as conn:
        assert conn.execute("select 1").fetchone() == (1,)
    assert redis.Redis.from_url(redis_url, socket_timeout=5).ping()
