"""What signing chain heads costs per commit (issue 9), beside the engine without it.

Run: ``pytest -m benchmark tests/benchmarks/test_audit_signing.py -s``. The same
engine handles batches of posts with and without ``engine.heads``, interleaved, on
the real Redis; CPU time of this process per event is printed with the ratio.
Nothing is asserted about speed.
"""

from __future__ import annotations

import io
import json
import statistics
import time
from collections.abc import Iterator

import pytest
import redis
from esafety.workers.app import App, build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.logs import configure_logging
from esafety.workers.settings import Settings
from esafety.workers.signing import HeadSigner
from esafety.workflows.model import AuditEntry

from tests.helpers import post

pytestmark = pytest.mark.benchmark

ENTRY = AuditEntry.model_validate(
    {
        "case_id": "post:p1",
        "seq": 3,
        "at": "2026-11-24T10:00:00Z",
        "actor": "system:screening",
        "event_id": "e",
        "from": "screening",
        "to": "warning",
        "trigger": "warn",
        "policy_version": "v",
        "prev_hash": "0" * 64,
        "hash": "f" * 64,
    }
)


@pytest.fixture
def app(prefix: str, real_redis: redis.Redis) -> Iterator[App]:
    configure_logging("json", "WARNING", stream=io.StringIO())
    settings = Settings(redis_url=None, key_prefix=prefix)
    app = build_app(settings, embedded=True, clock=VirtualClock(), client=real_redis)
    app.engine.dispatch = None
    yield app
    configure_logging("console", "WARNING")


def _batch(app: App, start: int, size: int) -> float:
    bodies = [
        json.dumps(post(f"p{i}", f"m{i % 300}", "hello" if i % 3 else "total shit", id=f"e{i}"))
        for i in range(start, start + size)
    ]
    began = time.process_time()
    for body in bodies:
        app.engine.handle_event(body)
    return (time.process_time() - began) / size * 1e6


def test_signing_cost_per_commit(app: App) -> None:
    signer = HeadSigner.generate()
    began = time.process_time()
    for _ in range(5000):
        signer.heads([ENTRY])
    one = (time.process_time() - began) / 5000 * 1e6
    heads, size = app.engine.heads, 150
    cost: dict[bool, list[float]] = {True: [], False: []}
    for round_ in range(8):
        for sign in (round_ % 2 == 0, round_ % 2 == 1):
            app.engine.heads = heads if sign else None
            cost[sign].append(_batch(app, (2 * round_ + sign) * size, size))
    signed, unsigned = statistics.median(cost[True]), statistics.median(cost[False])
    print(
        f"\none signed head: {one:.0f} us CPU; per event (1-2 chains): unsigned {unsigned:.0f} us,"
        f" signed {signed:.0f} us CPU, ratio {signed / unsigned:.2f}"
    )
