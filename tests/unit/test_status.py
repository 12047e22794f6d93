"""``esafety status`` from dramatiq's Redis layout (fakeredis), and the per-queue prefetch."""

from __future__ import annotations

import dramatiq
import fakeredis
import pytest
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from esafety.workers.app import build_app
from esafety.workers.broker import StageWorker, queue_names
from esafety.workers.settings import Settings
from esafety.workers.status import drained, queue_status_amqp, queue_status_redis


@pytest.fixture
def broker() -> RedisBroker:
    return RedisBroker(client=fakeredis.FakeRedis(), namespace="ns", maintenance_chance=0)


def _actor(broker: dramatiq.Broker, queue: str = "events") -> dramatiq.Actor:
    def noop(n: int) -> None:
        return None

    return dramatiq.actor(noop, broker=broker, actor_name=f"noop_{queue}", queue_name=queue)


def test_counts_ready_in_flight_delayed_retrying_and_dead(broker: RedisBroker) -> None:
    actor = _actor(broker)
    first = actor.send(1)
    for n in (2, 3, 4):
        actor.send(n)
    actor.send_with_options(args=(5,), delay=3_600_000)  # a timer, due in an hour
    actor.send_with_options(args=(6,), delay=60_000, retries=2)  # waiting to be retried
    consumer = broker.consume("events", prefetch=2)
    taken = next(consumer)
    assert taken is not None and taken.message_id == first.message_id
    consumer.nack(taken)  # dead-lettered
    next(consumer)  # one more fetched and held: in flight
    counts, oldest = queue_status_redis(broker.client, "ns", "events")
    assert counts == {"ready": 2, "delayed": 1, "in_flight": 1, "retrying": 1, "dead_letters": 1}
    assert oldest is not None and oldest >= first.message_timestamp


def test_an_empty_queue_is_all_zero(broker: RedisBroker) -> None:
    counts, oldest = queue_status_redis(broker.client, "ns", "deliveries")
    assert set(counts.values()) == {0}
    assert oldest is None


def test_amqp_reports_what_a_passive_declare_can() -> None:
    seen: list[str] = []
    answers = {"q": (7, 2), "q.DQ": (3, 2), "q.XQ": (1, 0)}

    def declare(name: str) -> tuple[int, int]:
        seen.append(name)
        return answers[name]

    counts = queue_status_amqp(declare, "q")
    assert seen == ["q", "q.DQ", "q.XQ"]
    assert counts == {
        "ready": 7,
        "delayed": 3,
        "in_flight": None,
        "retrying": None,
        "dead_letters": 1,
        "consumers": 2,
    }


def _status(**queue: int | None) -> dict:
    base = {"ready": 0, "delayed": 5, "in_flight": 0, "retrying": 0}
    return {"queues": {"events": {**base, **queue}}, "outbox_pending": 0}


@pytest.mark.parametrize(
    ("queue", "pending", "expected"),
    [
        ({}, 0, True),  # delayed timers do not keep a run from being drained
        ({"ready": 1}, 0, False),
        ({"in_flight": 2}, 0, False),
        ({"retrying": 1}, 0, False),
        ({}, 3, False),
        ({"in_flight": None, "retrying": None}, 0, True),  # RabbitMQ: unknown, skipped
    ],
)
def test_drained(queue: dict, pending: int, expected: bool) -> None:
    status = _status(**queue)
    status["outbox_pending"] = pending
    assert drained(status) is expected


def test_queue_names_are_namespaced_on_amqp_only() -> None:
    redis_settings = Settings(redis_url="redis://127.0.0.1:6379/0", broker_namespace="ns")
    amqp_settings = Settings(
        redis_url="redis://127.0.0.1:6379/0",
        broker_url="amqp://guest:guest@127.0.0.1:5672/",
        broker_namespace="ns",
    )
    assert queue_names(redis_settings)["events"] == "events"
    assert queue_names(amqp_settings)["events"] == "ns.events"
    assert queue_names(amqp_settings, embedded=True)["deliveries"] == "deliveries"


def test_prefetch_is_set_per_queue_from_the_settings() -> None:
    settings = Settings(
        redis_url=None, queue_prefetch=40, prefetch_by_queue={"events": 300, "deliveries": 7}
    )
    app = build_app(settings, embedded=True)
    worker = app.worker(threads=2)
    assert isinstance(worker, StageWorker)
    worker.start()
    try:
        prefetch = {name: thread.prefetch for name, thread in worker.consumers.items()}
    finally:
        worker.stop()
    assert prefetch["events"] == 300
    assert prefetch["deliveries"] == 7
    assert prefetch["timers"] == 40 and prefetch["commands"] == 40


def test_delay_queues_keep_dramatiqs_delay_prefetch(broker: RedisBroker) -> None:
    _actor(broker, "events")
    _actor(broker, "timers")
    worker = StageWorker(broker, prefetch={"events": 64}, worker_threads=1, worker_timeout=10)
    worker.start()
    try:
        prefetch = {name: thread.prefetch for name, thread in worker.consumers.items()}
    finally:
        worker.stop()
    assert prefetch == {
        "events": 64,
        "timers": 2,
        "events.DQ": worker.delay_prefetch,
        "timers.DQ": worker.delay_prefetch,
    }


def test_without_settings_prefetch_is_dramatiqs_default() -> None:
    worker = StageWorker(StubBroker(), prefetch={}, worker_threads=3)
    assert worker.default_prefetch == 6  # 2 x threads
