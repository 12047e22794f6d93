"""``esafety status``: what is queued, in flight, delayed, dead, quarantined, open.

One function, :func:`collect_status`, returns DESIGN.md's contract as a dict
(``esafety status --json`` prints it; tests and tools poll it until
:func:`drained`). On Redis every number is exact, read in one MULTI snapshot
per queue from dramatiq's own keys. On RabbitMQ, without the management
plugin, AMQP tells only what a passive ``queue_declare`` returns: messages
ready in each queue, its delay queue and its dead-letter queue, and the number
of consumers; messages a worker holds (in flight, or delayed until their time)
are not visible there, so those fields are ``None``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from .app import App
from .broker import is_amqp

__all__ = ["collect_status", "drained", "queue_status_amqp", "queue_status_redis"]

QueueStatus = dict[str, int | None]


def _retrying(raw: bytes) -> bool:
    try:
        return int(json.loads(raw).get("options", {}).get("retries", 0)) > 0
    except (ValueError, TypeError, AttributeError):
        return False


def _oldest_ms(encoded: bytes | None) -> int | None:
    if not encoded:
        return None
    try:
        return int(json.loads(encoded)["message_timestamp"])
    except (ValueError, KeyError, TypeError):
        return None


def queue_status_redis(client: Any, namespace: str, queue: str) -> tuple[QueueStatus, int | None]:
    """One queue on dramatiq's Redis layout; also the timestamp of the oldest ready message.

    ``delayed`` counts messages waiting for their time (timers) and ``retrying``
    those waiting to be retried (a ``retries`` option): both live in the delay
    queue's hash, held by a worker or not.
    """
    base = f"{namespace}:{queue}"
    pipe = client.pipeline(transaction=True)
    pipe.llen(base)
    pipe.hlen(f"{base}.msgs")
    pipe.zcard(f"{base}.XQ")
    pipe.lindex(base, 0)
    ready, stored, dead, head = pipe.execute()
    retrying = delayed = 0
    for _, raw in client.hscan_iter(f"{base}.DQ.msgs", count=1000):
        if _retrying(raw):
            retrying += 1
        else:
            delayed += 1
    oldest = _oldest_ms(client.hget(f"{base}.msgs", head)) if head else None
    counts: QueueStatus = {
        "ready": int(ready),
        "delayed": delayed,
        "in_flight": max(0, int(stored) - int(ready)),
        "retrying": retrying,
        "dead_letters": int(dead),
    }
    return counts, oldest


def queue_status_amqp(declare: Callable[[str], tuple[int, int]], queue: str) -> QueueStatus:
    """One queue on RabbitMQ from passive declares (``declare(name) -> (messages, consumers)``)."""
    ready, consumers = declare(queue)
    delayed, _ = declare(f"{queue}.DQ")
    dead, _ = declare(f"{queue}.XQ")
    return {
        "ready": ready,
        "delayed": delayed,
        "in_flight": None,
        "retrying": None,
        "dead_letters": dead,
        "consumers": consumers,
    }


def _amqp_declare(url: str) -> tuple[Callable[[str], tuple[int, int]], Callable[[], None]]:
    import pika
    import pika.exceptions

    connection = pika.BlockingConnection(pika.URLParameters(url))
    state = {"channel": connection.channel()}

    def declare(name: str) -> tuple[int, int]:
        try:
            ok = state["channel"].queue_declare(queue=name, passive=True)
        except pika.exceptions.ChannelClosedByBroker:  # 404: not declared yet, so empty
            state["channel"] = connection.channel()
            return 0, 0
        return int(ok.method.message_count), int(ok.method.consumer_count)

    return declare, connection.close


def _queues(app: App) -> tuple[dict[str, QueueStatus], int | None]:
    names = app.queue_map()
    if is_amqp(app.settings):
        assert app.settings.broker_url is not None
        declare, close = _amqp_declare(app.settings.broker_url.get_secret_value())
        try:
            return {stage: queue_status_amqp(declare, q) for stage, q in names.items()}, None
        finally:
            close()
    client, namespace = app.broker.client, app.broker.namespace
    out: dict[str, QueueStatus] = {}
    oldest: list[int] = []
    for stage, queue in names.items():
        out[stage], first = queue_status_redis(client, namespace, queue)
        if first is not None:
            oldest.append(first)
    return out, min(oldest) if oldest else None


def _store_part(app: App, now_ms: int) -> dict[str, Any]:
    store, keys = app.store, app.store.keys
    pipe = store.client.pipeline(transaction=True)
    pipe.hgetall(keys.stats)
    pipe.xlen(keys.quarantine)
    pipe.zcount(keys.workers, now_ms - app.settings.heartbeat_timeout_ms, "+inf")
    pipe.hgetall(keys.case_states)
    pipe.scard(keys.pending)
    stats, quarantine, workers, states, pending = pipe.execute()
    counts = {k.decode(): int(v) for k, v in stats.items()}
    open_states = {k.decode(): int(v) for k, v in states.items()}
    return {
        "events": {n: counts.get(n, 0) for n in ("accepted", "duplicates", "quarantined")},
        "quarantine": int(quarantine),
        "workers": int(workers),
        "cases_open": {s: n for s, n in sorted(open_states.items()) if s != "closed" and n > 0},
        "outbox_pending": int(pending),
        "outbox_relayed": counts.get("relayed", 0),
    }


def collect_status(app: App, now_ms: int | None = None) -> dict[str, Any]:
    """DESIGN.md's ``esafety status --json`` contract (extra fields: ``broker``, ``consumers``)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    queues, oldest = _queues(app)
    store = _store_part(app, now_ms)
    dead = sum(q.pop("dead_letters") or 0 for q in queues.values())
    return {
        "broker": "rabbitmq" if is_amqp(app.settings) else "redis",
        "queues": queues,
        "events": store["events"],
        "dead_letters": dead,
        "quarantine": store["quarantine"],
        "oldest_waiting_s": round(max(0, now_ms - oldest) / 1000, 3) if oldest else 0.0,
        "workers": store["workers"],
        "cases_open": store["cases_open"],
        "outbox_pending": store["outbox_pending"],
        # effects the outbox relay sent again because their message was gone (outbox_relay.py)
        "outbox_relayed": store["outbox_relayed"],
    }


def drained(status: dict[str, Any]) -> bool:
    """Every queue's ready, in flight and retrying, and the outbox, are 0.

    Exact on Redis. On RabbitMQ ``in_flight`` and ``retrying`` are unknown
    (``None``) and skipped: wait as well for the event counts you expect.
    """
    if status["outbox_pending"]:
        return False
    fields = ("ready", "in_flight", "retrying")
    return all(not q.get(f) for q in status["queues"].values() for f in fields)
