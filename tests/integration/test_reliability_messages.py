"""Issue 5: input that cannot be processed, on the real Redis with a real worker.

Bytes written straight into dramatiq's queues by something other than ``publish()``
(no message at all, or a message not for our actors), messages whose arguments do
not fit, and event bodies that do not parse: each is quarantined with its raw bytes
and a reason, and the worker keeps running and processing good events.
"""

from __future__ import annotations

import json
import uuid
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


LIMITS = {
    "ESAFETY_MAX_TEXT_CHARS": "500",
    "ESAFETY_MAX_LIST_ITEMS": "5",
    "ESAFETY_MAX_ID_CHARS": "60",
    "ESAFETY_MAX_PAYLOAD_BYTES": "20000",
}


def _over_limits(at: str) -> dict[str, dict[str, Any]]:
    """One event over each configured limit (all well under the defaults)."""
    text = post("p-text", "m1", "t" * 501, id="over-text", time=at)
    links = post("p-links", "m1", "hi", id="over-links", time=at)
    links["data"]["links"] = [f"https://example.org/{n}" for n in range(6)]
    ids = post("p-" + "i" * 60, "m1", "hi", id="over-id", time=at)
    size = post("p-size", "m1", "hi", id="over-size", time=at)
    size["padding"] = "p" * 20_000
    return {
        "max_text_chars limit of 500": text,
        "max_list_items limit of 5": links,
        "max_id_chars limit of 60": ids,
        "max_payload_bytes limit of 20000": size,
    }


def _raw_garbage(app: Any, namespace: str) -> list[bytes]:
    """Bytes written straight into four queues, bypassing dramatiq."""
    raw = [
        (queue, data)
        for seed, queue in enumerate(("events", "timers", "deliveries", "events.DQ"))
        for _, data in hostile_messages(16, seed=seed, queue=queue)
    ]
    for queue, data in raw:
        write_raw(app.broker.client, namespace, queue, data, f"raw-{uuid.uuid4()}")
    return [data for _, data in raw]


def _bad_bodies(app: Any, at: str) -> dict[str, Any]:
    """Event bodies the engine must refuse: hostile ones, one over each limit, one marked."""
    marked = post("p1", "m1", "MARKER-TEXT", id="marked-1")
    marked["data"]["links"] = "MARKER-LINK"  # a string where a list belongs
    over = _over_limits(at)
    bodies = [body for _, body in hostile_bodies(90)] + [json.dumps(e) for e in over.values()]
    bodies.append(json.dumps(marked))
    for body in bodies:
        app.actors["handle_event"].send(body)
    return {"bodies": bodies, "over": over}


def test_garbage_in_the_queues_is_quarantined_and_the_worker_carries_on(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**worker_env, **LIMITS}
    workers = start_workers(env, tmp_path / "workers.log", processes=1, threads=4)
    try:
        [pid] = workers.wait_ready(1)
        app = app_for(env)
        raw = _raw_garbage(app, env["ESAFETY_BROKER_NAMESPACE"])
        for actor, args in hostile_arguments(14):
            app.actors[actor].send_with_options(args=args)
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        sent = _bad_bodies(app, at)
        good = [
            post(f"ok-{n}", f"m-{n}", "a lovely day", id=f"good-{n}", time=at) for n in range(9)
        ]
        for event in good:
            publish(event, sender=DramatiqSender(app))
        report = wait_drained(app, timeout=60)
        assert workers.children() == [pid], "the worker process died and was restarted"
    finally:
        workers.stop()

    entries = app.store.quarantine_entries(raw=True)
    stages = [e["stage"] for e in entries]
    assert len(set(raw)) == len(raw) and stages.count("message") == len(raw) + 14
    assert stages.count("consume") == len(sent["bodies"])
    assert all(e["error"] for e in entries) and report["events"]["quarantined"] == len(entries)
    assert {e["raw"] for e in entries if e["stage"] == "message"} >= set(raw)
    assert account(app.store, good)["committed"] == [e["id"] for e in good]
    assert worker_trouble(workers.text()) == []
    # the raw bytes are kept exactly; the reason names the field, never the content
    [entry] = [e for e in entries if e["event_id"] == "marked-1"]
    assert entry["raw"] == sent["bodies"][-1].encode() and "data.links" in entry["error"]
    assert "MARKER" not in entry["error"] and "MARKER" not in workers.text()
    # limits come from the configuration, and the reason names the one passed
    reasons = {e["raw"]: e["error"] for e in entries if e["stage"] == "consume"}
    for limit, event in sent["over"].items():
        assert limit in reasons[json.dumps(event).encode()], limit
