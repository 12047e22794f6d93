"""Issue 5, hostile input through the real path: zero worker crashes, every one quarantined.

Random and hostile payloads (broken JSON, wrong types, missing fields, deep nesting,
huge strings, control characters, wrong encodings, bad envelopes, JSON that is not
an object) are sent to the ``handle_event`` actor as event bodies; bytes that are no
dramatiq message, or not one for our actors, are written straight into every queue;
messages whose arguments do not fit their actor go through dramatiq itself. Two
worker processes with 8 threads each take them all. Afterwards: one quarantine entry
per payload with a reason, the same worker processes still running, nothing in
their logs that shows a crash or a swallowed failure, and good events published
after the storm are processed.

The default run's smaller variant is tests/integration/test_reliability_messages.py
(every kind, fewer of each, on one worker process).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from esafety.events.publish import publish
from esafety.workers.app import DramatiqSender

from tests.helpers import post
from tests.integration.test_reliability_kit import (
    account,
    app_for,
    start_workers,
    wait_drained,
    worker_trouble,
    write_raw,
)
from tests.unit.test_hostile_payloads import hostile_arguments, hostile_bodies, hostile_messages

pytestmark = pytest.mark.integration
QUEUES = ("events", "timers", "commands", "deliveries", "events.DQ", "timers.DQ")


def _storm(app: Any, namespace: str, bodies: int, raw: int, arguments: int) -> dict[str, Any]:
    sent_bodies = hostile_bodies(bodies, seed=23)
    for _, body in sent_bodies:
        app.actors["handle_event"].send(body)
    sent_raw = []
    per_queue = raw // len(QUEUES)
    for seed, queue in enumerate(QUEUES):
        for kind, data in hostile_messages(per_queue, seed=100 + seed, queue=queue):
            write_raw(app.broker.client, namespace, queue, data, f"raw-{uuid.uuid4()}")
            sent_raw.append((kind, data))
    sent_args = hostile_arguments(arguments)
    for actor, args in sent_args:
        app.actors[actor].send_with_options(args=args)
    return {"bodies": sent_bodies, "raw": sent_raw, "args": sent_args}


def _run(env: dict[str, str], tmp_path: Path, bodies: int, raw: int, arguments: int) -> str:
    workers = start_workers(env, tmp_path / "workers.log", processes=2, threads=8)
    try:
        pids = sorted(workers.wait_ready(2))
        app = app_for(env)
        started = time.monotonic()
        sent = _storm(app, env["ESAFETY_BROKER_NAMESPACE"], bodies, raw, arguments)
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        texts = ["see you at the fair", "this is shit", "this is shit too"]
        good = [post(f"after-{n}", "m1", t, id=f"after-{n}", time=at) for n, t in enumerate(texts)]
        sender = DramatiqSender(app)
        for event in good:
            publish(event, sender=sender)
        report = wait_drained(app, timeout=600)
        elapsed = time.monotonic() - started
        assert sorted(workers.children()) == pids, "a worker process died"
    finally:
        workers.stop()

    entries = app.store.quarantine_entries(raw=True)
    total = len(sent["bodies"]) + len(sent["raw"]) + len(sent["args"])
    assert len(entries) == total, (len(entries), total)
    assert all(e["error"].strip() for e in entries)
    stages = Counter(e["stage"] for e in entries)
    assert stages == {
        "consume": len(sent["bodies"]),
        "message": len(sent["raw"]) + len(sent["args"]),
    }
    kept = {e["raw"] for e in entries}
    assert {b.encode("utf-8", "surrogatepass") for _, b in sent["bodies"]} <= kept
    assert {d for _, d in sent["raw"]} <= kept
    assert report["events"]["quarantined"] == total
    assert account(app.store, good)["committed"] == [e["id"] for e in good]
    assert worker_trouble(workers.text()) == []
    kinds = Counter(k for k, _ in sent["bodies"]) + Counter(k for k, _ in sent["raw"])
    return (
        f"{total} payloads ({len(sent['bodies'])} bodies, {len(sent['raw'])} raw, "
        f"{len(sent['args'])} bad arguments) quarantined with a reason in {elapsed:.1f} s; "
        f"0 worker crashes; kinds {dict(sorted(kinds.items()))}"
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_10000_hostile_payloads(worker_env: dict[str, str], tmp_path: Path) -> None:
    print(
        "\nhostile (10,000):", _run(worker_env, tmp_path, bodies=7_000, raw=1_500, arguments=1_500)
    )
