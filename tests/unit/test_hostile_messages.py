"""Messages written straight into the broker by something other than ``publish()``.

The guard (workers/redis_guard.py) on fakeredis with dramatiq's own Lua scripts,
the Quarantine middleware's checks, and dead-letter reasons. The same paths on the
real Redis with real workers: tests/integration/test_reliability_messages.py.
"""

from __future__ import annotations

import base64
import inspect
import json
import logging
from typing import Any

import dramatiq
import fakeredis
import pytest
from dramatiq import Message
from dramatiq.broker import MessageProxy
from dramatiq.middleware import SkipMessage
from esafety.events.errors import CaseNotFound
from esafety.workers.broker import middleware
from esafety.workers.clock import VirtualClock
from esafety.workers.keys import Keys
from esafety.workers.middleware import (
    POISON,
    REASON,
    Quarantine,
    argument_problem,
    dead_letter_key,
    message_problem,
    reason_of,
)
from esafety.workers.redis_guard import GuardedRedisBroker
from esafety.workers.settings import Settings
from esafety.workers.store import RedisStore
from pydantic import BaseModel, ValidationError

from esafety.testing import fake_app
from tests.conftest import NOW

TIMER = json.dumps(
    {
        "timer_id": "t1",
        "kind": "alert_deadline",
        "tag": "x",
        "target": "y",
        "due": "2026-11-24T10:00:00Z",
    }
)


@pytest.fixture
def client() -> fakeredis.FakeRedis:
    return fakeredis.FakeRedis()


@pytest.fixture
def store(client: fakeredis.FakeRedis) -> RedisStore:
    return RedisStore(client, Keys("t"))


@pytest.fixture
def broker(client: fakeredis.FakeRedis) -> GuardedRedisBroker:
    broker = GuardedRedisBroker(client=client, namespace="ns", middleware=middleware(Settings()))

    def handle_event(body: str, line: int | None = None) -> None:
        return None

    def fire_timer(timer_json: str) -> None:
        return None

    dramatiq.actor(handle_event, broker=broker, actor_name="handle_event", queue_name="events")
    dramatiq.actor(fire_timer, broker=broker, actor_name="fire_timer", queue_name="timers")
    return broker


def _message(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "queue_name": "events",
        "actor_name": "handle_event",
        "args": ["{}"],
        "kwargs": {},
        "options": {"redis_message_id": "r1"},
        "message_id": "m1",
        "message_timestamp": 1,
    }
    fields.update(changes)
    return fields


def _put(client: fakeredis.FakeRedis, redis_id: str, data: bytes, queue: str = "events") -> None:
    client.hset(f"ns:{queue}.msgs", redis_id, data)
    client.rpush(f"ns:{queue}", redis_id)


# -- what a message must look like ------------------------------------------------------


def test_a_message_dramatiq_wrote_passes(broker: GuardedRedisBroker) -> None:
    assert message_problem(_message(), "events", broker.actors) is None
    assert message_problem(_message(queue_name="events.DQ"), "events.DQ", broker.actors) is None


@pytest.mark.parametrize(
    ("fields", "queue", "reason"),
    [
        ([1, 2], "events", "not a JSON object"),
        (_message(args="x"), "events", "field 'args'"),
        (_message(kwargs=[]), "events", "field 'kwargs'"),
        (_message(options=None), "events", "field 'options'"),
        (_message(message_timestamp="now"), "events", "field 'message_timestamp'"),
        (_message(message_timestamp=True), "events", "field 'message_timestamp'"),
        (_message(queue_name="timers"), "events", "does not match the queue"),
        (_message(actor_name="nobody"), "events", "no actor 'nobody'"),
        (_message(actor_name="fire_timer"), "events", "no actor 'fire_timer' on queue 'events'"),
        (_message(extra=1), "events", "unknown field 'extra'"),
        (_message(options={"redis_message_id": 5}), "events", "'redis_message_id'"),
        (_message(options={"retries": "x"}), "events", "option 'retries' is not an integer"),
        (_message(options={"max_retries": None}), "events", "'max_retries'"),
        (_message(options={"eta": "soon"}), "events", "option 'eta'"),
        (_message(options={"pipe_target": {}}), "events", "'pipe_target' is not allowed"),
        (_message(options={"on_failure": "x"}), "events", "'on_failure' is not allowed"),
    ],
)
def test_what_dramatiq_would_choke_on_is_named(
    broker: GuardedRedisBroker, fields: Any, queue: str, reason: str
) -> None:
    problem = message_problem(fields, queue, broker.actors)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    ("actor", "args", "kwargs", "reason"),
    [
        ("handle_event", (), {}, "takes (body, line=None)"),
        ("handle_event", (1,), {}, "'body' is not a string"),
        ("handle_event", ("{}", "3"), {}, "'line' is not an integer"),
        ("handle_event", ("{}", 1, 2), {}, "takes (body, line=None)"),
        ("handle_event", ("{}",), {"other": 1}, "takes (body, line=None)"),
        ("fire_timer", ("not json",), {}, "not a timer"),
        ("fire_timer", (7,), {}, "not a timer"),
        ("fire_timer", (TIMER, TIMER), {}, "takes one argument"),
        ("apply_command", ("{}",), {}, "not a command"),
        ("deliver", ("tag",), {}, "takes (tag, effect_ids)"),
        ("deliver", ("tag", "eff-1"), {}, "effect ids"),
        ("deliver", ("tag", [1]), {}, "not a list of strings"),
    ],
)
def test_arguments_that_do_not_fit_the_actor_are_named(
    actor: str, args: tuple[Any, ...], kwargs: dict[str, Any], reason: str
) -> None:
    problem = argument_problem(actor, args, kwargs)
    assert problem is not None and reason in problem


def test_arguments_that_fit_pass() -> None:
    assert argument_problem("handle_event", ("{}",), {}) is None
    assert argument_problem("handle_event", ("{}", 4), {}) is None
    assert argument_problem("handle_event", ("{}",), {"line": None}) is None
    assert argument_problem("fire_timer", (TIMER,), {}) is None
    assert argument_problem("deliver", ("m:1", ["eff-1"]), {}) is None
    assert argument_problem("someone_elses_actor", (1, 2, 3), {}) is None


def test_a_pydantic_reason_never_quotes_the_input() -> None:
    problem = argument_problem("fire_timer", ('{"timer_id": "SECRET-MARKER"}',), {})
    assert problem is not None and "SECRET-MARKER" not in problem


# -- the guard on fetch ------------------------------------------------------------------


def _poison(data: bytes | None) -> dict[str, Any]:
    assert data is not None
    return dict(Message.decode(data).options)


def test_the_guard_passes_good_messages_untouched(
    broker: GuardedRedisBroker, client: fakeredis.FakeRedis
) -> None:
    sent = broker.actors["handle_event"].send("{}")
    [data] = broker.do_fetch("events", 5)
    assert data is not None and Message.decode(data).message_id == sent.message_id
    assert POISON not in _poison(data)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"not json", "not JSON"),
        ("caf\u00e9".encode("latin-1"), "not UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "not UTF-8"),
        (b"[" * 100_000, "nests too deeply"),
        (b"[1, 2]", "not a JSON object"),
        (json.dumps(_message(actor_name="nobody")).encode(), "no actor 'nobody'"),
        (json.dumps(_message(options={"redis_message_id": "elsewhere"})).encode(), "does not name"),
        (json.dumps(_message(options={})).encode(), "'redis_message_id' is missing"),
    ],
)
def test_the_guard_swaps_bad_bytes_for_poison_under_their_real_id(
    broker: GuardedRedisBroker, client: fakeredis.FakeRedis, data: bytes, reason: str
) -> None:
    _put(client, "r1", data)
    [fetched] = broker.do_fetch("events", 5)
    options = _poison(fetched)
    assert options["redis_message_id"] == "r1"
    assert reason in options[POISON]["reason"]
    assert base64.b64decode(options[POISON]["raw"]) == data
    broker.do_ack("events", "r1")  # what the worker does after the middleware skips it
    assert client.hlen("ns:events.msgs") == 0
    assert client.scard(f"ns:__acks__.{broker.broker_id}.events") == 0


def test_the_guard_keeps_good_and_bad_apart_in_one_batch(
    broker: GuardedRedisBroker, client: fakeredis.FakeRedis
) -> None:
    broker.actors["handle_event"].send("{}")
    _put(client, "bad", b"\x00\x01")
    client.rpush("ns:events", "phantom")  # an id with no message: nothing to run, never acked
    broker.actors["handle_event"].send("{}")
    batch = broker.do_fetch("events", 10)
    poisoned = [d for d in batch if d is not None and POISON in _poison(d)]
    good = [d for d in batch if d is not None and POISON not in _poison(d)]
    assert len(poisoned) == 1 and len(good) == 2 and batch.count(None) == 1
    assert _poison(poisoned[0])["redis_message_id"] == "bad"
    acks = client.smembers(f"ns:__acks__.{broker.broker_id}.events")
    assert b"phantom" not in acks and len(acks) == 3


def test_the_guard_vets_delay_queues_too(
    broker: GuardedRedisBroker, client: fakeredis.FakeRedis
) -> None:
    _put(client, "d1", b"{", queue="timers.DQ")
    [fetched] = broker.do_fetch("timers.DQ", 5)
    message = Message.decode(fetched or b"")
    assert message.queue_name == "timers.DQ" and message.actor_name == "fire_timer"
    assert "eta" not in message.options  # handled at once, not parked as a timer


# -- the middleware -----------------------------------------------------------------------


def _entries(store: RedisStore) -> list[dict[str, Any]]:
    return store.quarantine_entries(raw=True)


def test_poison_is_quarantined_with_its_raw_bytes_and_skipped(
    broker: GuardedRedisBroker, store: RedisStore, client: fakeredis.FakeRedis
) -> None:
    guard = Quarantine(store, VirtualClock(NOW))
    _put(client, "r9", b"\xff garbage")
    [fetched] = broker.do_fetch("events", 1)
    with pytest.raises(SkipMessage):
        guard.before_process_message(broker, MessageProxy(Message.decode(fetched or b"")))
    [entry] = _entries(store)
    assert entry["raw"] == b"\xff garbage" and entry["stage"] == "message"
    assert "not UTF-8" in entry["error"]
    assert store.stats()["quarantined"] == 1


def test_bad_arguments_are_quarantined_with_the_bytes_as_stored(
    broker: GuardedRedisBroker, store: RedisStore
) -> None:
    guard = Quarantine(store, VirtualClock(NOW))
    sent = broker.actors["handle_event"].send_with_options(args=(1, 2, 3))
    [data] = broker.do_fetch("events", 1)
    message = Message.decode(data or b"")
    for _ in range(2):  # a redelivery is not kept twice
        with pytest.raises(SkipMessage):
            guard.before_process_message(broker, MessageProxy(message))
    [entry] = _entries(store)
    assert entry["raw"] == data and sent.message_id.encode() in entry["raw"]
    assert "actor 'handle_event': handle_event takes (body, line=None)" in entry["error"]


def test_good_messages_pass_the_middleware(broker: GuardedRedisBroker, store: RedisStore) -> None:
    guard = Quarantine(store, VirtualClock(NOW))
    message = broker.actors["handle_event"].send("{}")
    guard.before_process_message(broker, MessageProxy(message))
    assert _entries(store) == []


def test_a_dead_letter_gets_its_reason(broker: GuardedRedisBroker, store: RedisStore) -> None:
    guard = Quarantine(store, VirtualClock(NOW))
    message = broker.actors["handle_event"].send_with_options(args=("{}",), retries=8)
    proxy = MessageProxy(message)
    guard.after_process_message(broker, proxy, exception=CaseNotFound("post:p1"))
    guard.after_nack(broker, proxy)
    redis_id = message.options["redis_message_id"]
    record = json.loads(store.client.hget(dead_letter_key(store), redis_id))
    assert (
        record["reason"] == "CaseNotFound: case 'post:p1' does not exist (yet); check the case id"
    )
    assert (record["queue"], record["actor"], record["attempts"]) == ("events", "handle_event", 8)
    assert proxy.options[REASON] == record["reason"]


class _Body(BaseModel):
    text: int


def test_reasons_keep_our_words_and_only_the_type_of_others() -> None:
    try:
        _Body.model_validate({"text": "POST TEXT MARKER"})
    except ValidationError as exc:
        assert reason_of(exc) == "ValidationError"
    assert reason_of(CaseNotFound("c1")).startswith("CaseNotFound: case 'c1'")
    assert reason_of(FileExistsError(17, "File exists", "/secret/path")) == (
        "FileExistsError: errno 17 (File exists)"
    )
    assert reason_of(ValueError("a@b.example")) == "ValueError"


def test_dramatiq_log_lines_show_ids_not_arguments(
    broker: GuardedRedisBroker, store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    guard = Quarantine(store, VirtualClock(NOW))
    guard.before_worker_boot(broker, None)
    message = broker.actors["handle_event"].send("POST TEXT MARKER")
    logger = logging.getLogger("dramatiq.worker.WorkerThread")
    with caplog.at_level(logging.WARNING, logger="dramatiq"):
        logger.warning("Message %s was skipped.", MessageProxy(message))
    assert "POST TEXT MARKER" not in caplog.text
    assert f"handle_event#{message.message_id}" in caplog.text


# -- what a lost connection strands ------------------------------------------------------


def test_a_fetch_whose_reply_was_lost_is_requeued_when_the_consumer_restarts(
    broker: GuardedRedisBroker, client: fakeredis.FakeRedis
) -> None:
    """Redis ran the fetch (the ids moved to our unacked set) but the reply never came."""
    sent = [broker.actors["handle_event"].send(f"{n}") for n in range(3)]
    broker._dispatch("fetch")("events", 2)  # as if the reply had been lost
    acks = f"ns:__acks__.{broker.broker_id}.events"
    assert client.scard(acks) == 2 and client.llen("ns:events") == 1
    broker.consume("events")  # dramatiq restarts a consumer after a connection error
    batch = broker.do_fetch("events", 10)
    assert sorted(Message.decode(d or b"").message_id for d in batch) == sorted(
        m.message_id for m in sent
    )


def test_messages_this_process_holds_are_not_reclaimed(
    broker: GuardedRedisBroker, client: fakeredis.FakeRedis
) -> None:
    broker.actors["handle_event"].send("{}")
    [data] = broker.do_fetch("events", 5)  # handed to a worker thread, not acked yet
    broker.consume("events")
    assert broker.do_fetch("events", 5) == []
    redis_id = Message.decode(data or b"").options["redis_message_id"]
    broker.do_ack("events", redis_id)
    assert client.hlen("ns:events.msgs") == 0


def test_delayed_messages_a_dead_consumer_dropped_come_back(
    broker: GuardedRedisBroker, client: fakeredis.FakeRedis
) -> None:
    """dramatiq empties a consumer's in-memory delay queue on a connection error."""
    broker.actors["fire_timer"].send_with_options(args=(TIMER,), delay=60_000)
    assert len(broker.do_fetch("timers.DQ", 5)) == 1
    broker.consume("timers.DQ")
    assert len(broker.do_fetch("timers.DQ", 5)) == 1  # requeued and fetched again


def test_the_argument_checks_match_the_actors_the_app_registers() -> None:
    """If an actor's signature changes, its check in workers/middleware.py must too."""
    app = fake_app(NOW)
    expected = {
        "handle_event": ["body", "line"],
        "fire_timer": ["timer_json"],
        "apply_command": ["command_json"],
        "deliver": ["tag", "effect_ids"],
    }
    for name, params in expected.items():
        assert list(inspect.signature(app.actors[name].fn).parameters) == params, name


def test_any_other_actor_must_at_least_accept_the_arguments(broker: GuardedRedisBroker) -> None:
    def other(a: int, b: int = 2) -> None:
        return None

    assert argument_problem("other", (1,), {}, other) is None
    assert argument_problem("other", (1, 2, 3), {}, other) == "arguments do not fit other(a, b=2)"


def test_a_stopped_consumer_hands_back_the_batch_it_had_not_read(
    broker: GuardedRedisBroker, client: fakeredis.FakeRedis
) -> None:
    """dramatiq leaves the unread rest of a prefetched batch in our unacked set on stop."""
    for n in range(5):
        broker.actors["handle_event"].send(f"{n}")
    consumer = broker.consume("events", prefetch=4)
    first = next(consumer)
    acks = f"ns:__acks__.{broker.broker_id}.events"
    assert client.scard(acks) == 4 and client.llen("ns:events") == 1
    consumer.ack(first)
    consumer.close()
    assert client.scard(acks) == 0
    assert client.llen("ns:events") == 4
    assert client.hlen("ns:events.msgs") == 4
