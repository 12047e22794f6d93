"""The outbox relay resends a pending effect whose delivery message is gone, and only then."""

from __future__ import annotations

import json
import time

import fakeredis
import pytest
from esafety.workers.outbox_relay import OutboxRelay, named_entries

PENDING = "p:idx:outbox_pending"


Sent = list[tuple[str, list[str]]]


def _relay(client: fakeredis.FakeRedis, sent: Sent, **kw: int) -> OutboxRelay:
    return OutboxRelay(
        client=client,
        broker_client=client,
        pending_key=PENDING,
        prefix="p",
        namespace="ns",
        queue="deliveries",
        send=lambda tag, ids: sent.append((tag, ids)),
        grace_ms=kw.get("grace_ms", 0),
        lock_ms=kw.get("lock_ms", 1),
        max_resends=kw.get("max_resends", 3),
        stats_key="p:stats",
    )


def _sweep(relay: OutboxRelay) -> list[str]:
    time.sleep(0.01)  # the previous pass's lock (1 ms) has expired
    return relay.sweep()


def _message(tag: str, *ids: str) -> bytes:
    return json.dumps({"actor_name": "deliver", "args": [tag, list(ids)], "options": {}}).encode()


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


def test_a_pending_effect_with_no_message_is_resent_after_the_grace_period(
    client: fakeredis.FakeRedis,
) -> None:
    sent: list[tuple[str, list[str]]] = []
    relay = _relay(client, sent)
    client.sadd(PENDING, "m:1|eff-a")
    assert _sweep(relay) == []  # first seen now: not yet past the grace period
    assert _sweep(relay) == ["m:1|eff-a"]
    assert sent == [("m:1", ["eff-a"])]
    assert client.hget("p:stats", "relayed") == b"1"


def test_each_resend_is_counted_for_metrics(client: fakeredis.FakeRedis) -> None:
    from esafety.workers.metrics import EngineMetrics

    metrics = EngineMetrics()
    relay = _relay(client, [])
    relay.on_relayed = metrics.relayed.inc
    client.sadd(PENDING, "m:1|eff-a", "m:1|eff-b")
    _sweep(relay)
    _sweep(relay)
    assert metrics.registry.get_sample_value("esafety_outbox_relayed_total") == 2


def test_nothing_is_resent_while_the_grace_period_runs(client: fakeredis.FakeRedis) -> None:
    sent: list[tuple[str, list[str]]] = []
    relay = _relay(client, sent, grace_ms=60_000)
    client.sadd(PENDING, "m:1|eff-a")
    assert _sweep(relay) == [] and _sweep(relay) == [] and sent == []


@pytest.mark.parametrize("queue", ["deliveries", "deliveries.DQ", "deliveries.XQ"])
def test_an_effect_a_message_still_names_is_left_to_that_message(
    client: fakeredis.FakeRedis, queue: str
) -> None:
    """Ready, delayed for a retry, in flight or dead-lettered: its message will do it."""
    sent: list[tuple[str, list[str]]] = []
    relay = _relay(client, sent)
    client.sadd(PENDING, "m:1|eff-a", "m:2|eff-b")
    client.hset(f"ns:{queue}.msgs", "rid-1", _message("m:1", "eff-x", "eff-a"))
    client.hset(f"ns:{queue}.msgs", "rid-2", b"\xff not json")
    _sweep(relay)
    assert _sweep(relay) == ["m:2|eff-b"]
    assert sent == [("m:2", ["eff-b"])]


def test_resends_are_bounded_and_delivered_entries_are_forgotten(
    client: fakeredis.FakeRedis,
) -> None:
    sent: list[tuple[str, list[str]]] = []
    relay = _relay(client, sent, max_resends=2)
    client.sadd(PENDING, "m:1|eff-a", "m:1|eff-b")
    for _ in range(6):
        _sweep(relay)
    assert sorted(sent) == [("m:1", ["eff-a"])] * 2 + [("m:1", ["eff-b"])] * 2
    client.srem(PENDING, "m:1|eff-a", "m:1|eff-b")  # delivered at last
    _sweep(relay)
    assert client.hlen("p:outbox:relay") == 0


def test_one_process_sweeps_at_a_time(client: fakeredis.FakeRedis) -> None:
    sent: list[tuple[str, list[str]]] = []
    first, second = _relay(client, sent, lock_ms=60_000), _relay(client, sent, lock_ms=60_000)
    client.sadd(PENDING, "m:1|eff-a")
    first.sweep()
    assert client.hlen("p:outbox:relay") == 1
    client.delete("p:outbox:relay")
    assert second.sweep() == [] and client.hlen("p:outbox:relay") == 0  # locked out


def test_what_a_deliveries_message_names() -> None:
    assert named_entries(_message("m:1", "eff-a", "eff-b")) == ["m:1|eff-a", "m:1|eff-b"]
    assert named_entries(None) == []
    assert named_entries(b"[]") == []
    assert named_entries(json.dumps({"args": ["m:1", "eff-a"]}).encode()) == []
