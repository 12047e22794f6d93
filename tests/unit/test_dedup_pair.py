"""Issue 5: events are deduplicated by the CloudEvents pair (source, id), not by id alone.

Two producers may pick the same id; CloudEvents makes an event unique by its source
and id together. The same id from another source is a new event; the same pair
again (a redelivery or a republish) changes nothing and is counted as a duplicate.
"""

from __future__ import annotations

import json
from typing import Any

from esafety.workers.app import App
from esafety.workers.process import Processor

from esafety.testing import fake_app
from tests.conftest import NOW
from tests.helpers import jsonl, post


def _state(app: App) -> tuple[Any, ...]:
    member = app.store.member("m1")
    return (
        (member.status.value, member.warnings) if member else None,
        sorted(e.effect_id for e in app.store.effects()),
        [e.hash for _, chain in app.store.iter_audit() for e in chain],
    )


def test_the_same_id_from_another_source_is_another_event() -> None:
    app = fake_app(NOW)
    first = post("p1", "m1", "this rota is shit", id="evt-1", source="facebook/group/a")
    other = post("p2", "m1", "this rota is shit", id="evt-1", source="facebook/group/b")
    assert app.engine.handle_event(json.dumps(first)) == "ok"
    assert app.engine.handle_event(json.dumps(other)) == "ok"  # not a duplicate of the first
    member = app.store.member("m1")
    assert member is not None and (member.status.value, member.warnings) == ("suspended", 2)
    stats = app.store.stats()
    assert (stats["accepted"], stats["duplicates"]) == (2, 0)


def test_the_same_pair_again_changes_nothing_and_counts_as_a_duplicate() -> None:
    app = fake_app(NOW)
    first = post("p1", "m1", "this rota is shit", id="evt-1", source="facebook/group/a")
    assert app.engine.handle_event(json.dumps(first)) == "ok"
    before = _state(app)
    for _ in range(3):  # redelivered, then republished by the producer
        assert app.engine.handle_event(json.dumps(first)) == "dup"
    assert _state(app) == before
    stats = app.store.stats()
    assert (stats["accepted"], stats["duplicates"], stats["quarantined"]) == (1, 3, 0)


def test_process_counts_pairs_not_ids() -> None:
    events = [
        post("p1", "m1", "hello", id="evt-1", source="facebook/group/a"),
        post("p2", "m1", "hello", id="evt-1", source="facebook/group/b"),
        post("p1", "m1", "hello", id="evt-1", source="facebook/group/a"),
    ]
    with Processor(fake_app(NOW)) as processor:
        report = processor.run(jsonl(events).splitlines())
    assert report["events"] == {"accepted": 2, "quarantined": 0, "duplicates": 1}
    assert sorted(c["case_id"] for c in report["cases"]) == ["post:p1", "post:p2"]
