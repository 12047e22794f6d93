"""Shared fixtures: a fixed clock, the default policy, fakeredis, and the real Redis.

The real-Redis fixture skips on a developer machine without Redis, and fails
under ``CI=true``: in CI an integration test is never silently skipped.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import fakeredis
import pytest
import redis
from esafety.workers.app import App, build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.keys import Keys
from esafety.workers.logs import configure_logging
from esafety.workers.settings import Settings
from esafety.workers.store import RedisStore
from esafety.workflows.policy import Policy, default_policy

REDIS_URL = os.environ.get("ESAFETY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
EXAMPLES = Path(__file__).resolve().parent.parent / "workers" / "examples"
NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


@pytest.fixture
def policy() -> Policy:
    return default_policy()


@pytest.fixture
def fake_store() -> RedisStore:
    return RedisStore(fakeredis.FakeRedis(), Keys(f"t{uuid.uuid4().hex[:8]}"))


@pytest.fixture
def embedded_app() -> App:
    return build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock(NOW))


def check_redis(url: str = REDIS_URL) -> redis.Redis:
    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI") == "true":
            pytest.fail(
                f"Redis is not reachable at {url} and CI=true: integration tests "
                "must not be skipped"
            )
        pytest.skip(f"Redis is not reachable at {url}")
    return client


@pytest.fixture
def real_redis() -> Iterator[redis.Redis]:
    client = check_redis()
    yield client
    client.close()


@pytest.fixture
def prefix(real_redis: redis.Redis) -> Iterator[str]:
    """A fresh key prefix on the real Redis, cleaned up afterwards."""
    name = f"esafety-test-{uuid.uuid4().hex[:10]}"
    yield name
    for pattern in (f"{name}:*", f"{name}-dq:*"):
        keys = list(real_redis.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            real_redis.delete(*keys[start : start + 500])


@pytest.fixture
def rendered() -> Iterator[io.StringIO]:
    """Every log line as JSON at DEBUG into a buffer (the redaction tests read it)."""
    stream = io.StringIO()
    configure_logging("json", "DEBUG", stream=stream)
    yield stream
    configure_logging("console", "WARNING")
