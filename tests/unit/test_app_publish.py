"""``App.publish``: a producer's publish from Python quarantines bad input with its raw
bytes (as ``esafety publish`` does for a file), then raises the error that names it."""

from __future__ import annotations

import json

import pytest
from esafety.events.errors import InvalidEvent
from esafety.workers.app import App

from tests.helpers import post


def test_bad_input_is_quarantined_with_its_bytes_then_raised(embedded_app: App) -> None:
    raw = b'{"specversion": "1.0", "type": "esafety.nothing.known", "id": "x-1"}'
    with pytest.raises(InvalidEvent) as caught:
        embedded_app.publish(raw, line=7)
    [entry] = embedded_app.store.quarantine_entries(raw=True)
    assert entry["raw"] == raw
    assert entry["stage"] == "publish" and entry["line"] == 7
    assert entry["error"] == str(caught.value) and str(caught.value)  # names the problem
    assert embedded_app.broker.queues[embedded_app.queue_map()["events"]].qsize() == 0


def test_undecodable_bytes_are_kept_as_they_came(embedded_app: App) -> None:
    raw = b"\xff\xfe not json at all"
    with pytest.raises(InvalidEvent):
        embedded_app.publish(raw)
    [entry] = embedded_app.store.quarantine_entries(raw=True)
    assert entry["raw"] == raw


def test_a_good_event_is_enqueued_and_nothing_quarantined(embedded_app: App) -> None:
    event = embedded_app.publish(json.dumps(post("p-1", "m-1", "hello all")))
    assert event.id
    assert embedded_app.broker.queues[embedded_app.queue_map()["events"]].qsize() == 1
    assert embedded_app.store.quarantine_entries() == []


def test_a_line_read_with_surrogateescape_keeps_its_own_bytes(embedded_app: App) -> None:
    raw = b'{"id": "x-2", "bad": "\xff\xfe"}'
    with pytest.raises(InvalidEvent):
        embedded_app.publish(raw.decode("utf-8", "surrogateescape"), line=3)
    [entry] = embedded_app.store.quarantine_entries(raw=True)
    assert entry["raw"] == raw


def test_within_a_run_the_same_bytes_at_the_same_line_are_kept_once(embedded_app: App) -> None:
    for _ in range(2):  # a publish retried after its reply was lost
        with pytest.raises(InvalidEvent):
            embedded_app.publish(b"{broken", line=4, scope="run-1")
    with pytest.raises(InvalidEvent):
        embedded_app.publish(b"{broken", line=5, scope="run-1")  # another line: kept
    with pytest.raises(InvalidEvent):
        embedded_app.publish(b"{broken", line=4, scope="run-2")  # the file again: kept
    with pytest.raises(InvalidEvent):
        embedded_app.publish(b"{broken")  # a producer's call, no scope: kept
    assert [e["line"] for e in embedded_app.store.quarantine_entries()] == [4, 5, 4, None]
