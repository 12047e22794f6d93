"""The outbox when the notifier fails midway: each effect is delivered once per effect id.

A batch whose second notice fails is retried (the actor raises); the retry skips what
was delivered and sends the rest. A worker killed after the notifier wrote a notice but
before the store marked it delivered retries it; the file notifier finds the effect id
already in its file and writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from esafety.workers.notifier import FileNotifier
from esafety.workflows.model import Effect

from esafety.testing import fake_app
from tests.conftest import NOW
from tests.helpers import post


class _FailsOnce:
    """A notifier whose ``fail_at``-th delivery raises once, then works."""

    def __init__(self, inner: FileNotifier, fail_at: int) -> None:
        self.inner, self.fail_at, self.calls = inner, fail_at, 0

    def deliver(self, effect: Effect, *, delivered_at: str) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionRefusedError(111, "Connection refused")
        self.inner.deliver(effect, delivered_at=delivered_at)


def _lines(path: Path) -> list[str]:
    return [json.loads(line)["effect_id"] for line in path.read_text().splitlines()]


def test_a_batch_that_fails_midway_is_finished_by_its_retry_once_each(tmp_path: Path) -> None:
    app = fake_app(NOW)
    notices = tmp_path / "notices.jsonl"
    app.engine.notifier = _FailsOnce(FileNotifier(notices), fail_at=2)  # midway
    app.engine.dispatch = None
    body = post("p1", "m1", "I'll hurt your kid", id="e1")  # a deletion, a removal, a DSL alert
    assert app.engine.handle_event(json.dumps(body)) == "ok"
    effects = app.store.effects()
    assert len(effects) >= 3
    tag, ids = app.store.tag_of("post:p1"), [e.effect_id for e in effects]
    assert tag is not None  # the post, its author and their outbox share the member's tag
    with pytest.raises(ConnectionRefusedError):
        app.engine.deliver(tag, ids)  # the second fails, the others go: the actor is retried
    assert app.store.outbox_pending() == 1
    assert app.engine.deliver(tag, ids) == 1  # the retry sends only what is left
    assert app.engine.deliver(tag, ids) == 0  # a redelivery sends nothing
    assert sorted(_lines(notices)) == sorted(ids)
    assert app.store.outbox_pending() == 0


def test_a_notice_written_but_not_marked_is_not_written_again(tmp_path: Path) -> None:
    app = fake_app(NOW)
    notices = tmp_path / "notices.jsonl"
    app.engine.dispatch = None
    app.engine.handle_event(json.dumps(post("p1", "m1", "this is shit", id="e1")))
    [first, *_] = app.store.effects()
    FileNotifier(notices).deliver(first, delivered_at="2026-11-24T10:00:00Z")  # then killed
    app.engine.notifier = FileNotifier(notices)  # the process that retries
    tag = app.store.tag_of("post:p1")
    assert tag is not None
    app.engine.deliver(tag, [e.effect_id for e in app.store.effects()])
    assert _lines(notices).count(first.effect_id) == 1
    assert len(_lines(notices)) == len(app.store.effects())
