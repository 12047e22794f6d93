"""Queue maintenance on a schedule (``GuardedRedisBroker.maintain``), with no KEYS.

A dead worker's unacknowledged messages (ready and delayed queues) go back to their
queues and its heartbeat is dropped; a live worker's are left alone; dead letters past
their TTL expire. dramatiq's in-command maintenance is off by default.
"""

from __future__ import annotations

import time

import dramatiq
import fakeredis
import pytest
from esafety.workers.broker import build_broker, middleware
from esafety.workers.redis_guard import GuardedRedisBroker
from esafety.workers.settings import Settings

HEARTBEATS = "ns:__heartbeats__"


def _broker(client: fakeredis.FakeRedis) -> GuardedRedisBroker:
    broker = GuardedRedisBroker(
        client=client,
        namespace="ns",
        middleware=middleware(Settings()),
        heartbeat_timeout=5_000,
        maintenance_chance=0,
        dead_message_ttl=60_000,
    )

    def handle_event(body: str, line: int | None = None) -> None:
        return None

    dramatiq.actor(handle_event, broker=broker, actor_name="handle_event", queue_name="events")
    return broker


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def _now_ms() -> int:
    return int(time.time() * 1000)


def test_a_dead_workers_messages_go_back_and_a_live_ones_stay(
    client: fakeredis.FakeRedis,
) -> None:
    live, dead = _broker(client), _broker(client)
    for n in range(5):
        live.actors["handle_event"].send(f"{n}")
    next(iter(dead.consume("events", prefetch=3)))  # the dead one took 3
    next(iter(live.consume("events", prefetch=1)))  # the live one holds 1
    client.hset("ns:events.DQ.msgs", "d1", b"{}")  # and a delayed one the dead one held
    client.sadd(f"ns:__acks__.{dead.broker_id}.events.DQ", "d1", "gone")  # 'gone': acked
    client.zadd(HEARTBEATS, {dead.broker_id: _now_ms() - 10_000, live.broker_id: _now_ms()})

    assert live.maintain() == (1, 4, 0)
    assert client.llen("ns:events") == 1 + 3  # the one nobody took, and the dead one's 3
    assert client.lrange("ns:events.DQ", 0, -1) == [b"d1"]
    assert client.exists(f"ns:__acks__.{dead.broker_id}.events") == 0
    assert client.exists(f"ns:__acks__.{dead.broker_id}.events.DQ") == 0
    assert client.scard(f"ns:__acks__.{live.broker_id}.events") == 1
    assert client.zscore(HEARTBEATS, dead.broker_id) is None
    assert client.zscore(HEARTBEATS, live.broker_id) is not None
    assert live.maintain() == (0, 0, 0)  # nothing twice


def test_dead_letters_past_their_ttl_expire(client: fakeredis.FakeRedis) -> None:
    broker = _broker(client)
    client.zadd("ns:events.XQ", {"old": _now_ms() - 120_000, "new": _now_ms()})
    client.hset("ns:events.XQ.msgs", mapping={"old": b"{}", "new": b"{}"})
    assert broker.maintain() == (0, 0, 1)
    assert client.zrange("ns:events.XQ", 0, -1) == [b"new"]
    assert client.hkeys("ns:events.XQ.msgs") == [b"new"]


def test_dramatiqs_in_command_maintenance_is_off_by_default() -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0")
    broker = build_broker(settings, embedded=False)
    assert broker.maintenance_chance == 0  # type: ignore[attr-defined]
    assert settings.maintenance_interval_ms == 1_000
