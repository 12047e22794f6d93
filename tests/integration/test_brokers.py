"""End to end on both brokers: `esafety publish` + 2 real worker processes, the store on Redis.

The same file gives the same cases and effects as the embedded run, whether
dramatiq runs on Redis or on RabbitMQ (127.0.0.1:5672). The events are chosen so
their outcome does not depend on the order in which concurrent workers take them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pika
import pika.exceptions
import pytest
import redis
from esafety.workers.keys import Keys
from esafety.workers.process import Processor
from esafety.workers.status import collect_status
from esafety.workers.store import RedisStore

from esafety.testing import fake_app
from tests.helpers import envelope, jsonl, post
from tests.integration.conftest import esafety, wait_for
from tests.integration.test_ops import app_for

AMQP_URL = os.environ.get("ESAFETY_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
STAGES = ("events", "timers", "commands", "deliveries")


def check_rabbitmq(url: str = AMQP_URL) -> None:
    try:
        pika.BlockingConnection(pika.URLParameters(url)).close()
    except pika.exceptions.AMQPError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ is not reachable at {url} and CI=true")
        pytest.skip(f"RabbitMQ is not reachable at {url}")


def delete_amqp_queues(namespace: str, url: str = AMQP_URL) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for stage in STAGES:
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(queue=f"{namespace}.{stage}{suffix}")
    finally:
        connection.close()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker_env(request: pytest.FixtureRequest, worker_env: dict[str, str]) -> Iterator[str]:
    """The broker under test, set in ``worker_env`` (shared with ``start_workers``)."""
    if request.param == "redis":
        yield "redis"
        return
    check_rabbitmq()
    worker_env["ESAFETY_BROKER_URL"] = AMQP_URL
    yield "rabbitmq"
    delete_amqp_queues(worker_env["ESAFETY_BROKER_NAMESPACE"])


def order_free_events() -> list[dict | str]:
    """One event per member or case, so no outcome depends on which worker goes first."""
    start = datetime.now(UTC).replace(microsecond=0)

    def at(seconds: int) -> str:
        return (start + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")

    events: list[dict | str] = [
        post("p1", "m1", "Lovely day at the fair", time=at(1)),
        post("p2", "m2", "this rota is shit", time=at(2)),
        post("p3", "m3", "I'll hurt your kid", time=at(3)),
        post("p4", "m4", "cakes for sale on saturday", time=at(4)),
        envelope(
            "esafety.complaint.received",
            {"complaint_id": "c1", "complainant_ref": "cr1", "text": "rude replies"},
            time=at(5),
        ),
        envelope(
            "esafety.allegation.reported",
            {
                "allegation_id": "a1",
                "reporter_ref": "s1",
                "category": "grooming",
                "subject_role": "volunteer",
            },
            time=at(6),
        ),
        envelope("esafety.member.removal_requested", {"member_id": "m9"}, time=at(7)),
        "not json at all",
    ]
    events += [
        post(f"q{n}", f"n{n}", f"Thanks for organising day {n}", time=at(8)) for n in range(12)
    ]
    return events


def test_publish_and_two_worker_processes_on_each_broker(
    broker_env: str,
    start_workers: Callable[..., subprocess.Popen[bytes]],
    worker_env: dict[str, str],
    prefix: str,
    real_redis: redis.Redis,
    tmp_path: Path,
) -> None:
    events = order_free_events()
    file = tmp_path / "events.jsonl"
    file.write_text(jsonl(events))
    valid = len(events) - 1
    workers = start_workers("--processes", "2", "--threads", "4")
    published = subprocess.run(
        esafety("publish", str(file)), env=worker_env, capture_output=True, text=True, timeout=60
    )
    assert published.returncode == 0, published.stderr
    assert f"published {valid}, quarantined 1" in published.stderr
    store = RedisStore(real_redis, Keys(prefix))

    def done() -> bool:
        stats = store.stats()
        return stats["accepted"] == valid and store.outbox_pending() == 0

    wait_for(done, timeout=90)
    app = app_for(worker_env)
    # a process still starting on a busy machine may not have beaten yet: the other one
    # can drain everything first; status must count both once both are up
    wait_for(lambda: collect_status(app)["workers"] == 2, timeout=60)
    report = collect_status(app)  # the CLI's own test: test_ops.py
    assert report["broker"] == broker_env
    assert report["events"] == {"accepted": valid, "duplicates": 0, "quarantined": 1}
    assert report["workers"] == 2
    assert report["queues"]["events"]["ready"] == 0

    with Processor(fake_app()) as processor:
        expected = processor.run(jsonl(events).splitlines())
    got = {c.case_id: (c.state.value, c.outcome.value, list(c.rules)) for c in store.cases()}
    want = {c["case_id"]: (c["state"], c["outcome"], c["rules"]) for c in expected["cases"]}
    assert got == want
    effect_ids = {e.effect_id for e in store.effects()}
    assert effect_ids == {e["effect_id"] for e in expected["effects"]}
    notices = (tmp_path / "notices.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["effect_id"] for line in notices) == sorted(effect_ids)
    workers.send_signal(signal.SIGTERM)
    assert workers.wait(timeout=60) == 0
