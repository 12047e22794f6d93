"""The quarantine keeps raw bytes apart from its entries (issue 5 with issue 9).

Each entry of the stream holds the reason, stage, time, line, event id, dedup mark
and the SHA-256 and length of the bytes; the bytes live in the evidence key space
(``keys.quarantine_raw``) under the entry's id. ``show`` reads them only when asked,
``replay`` reads them and removes them with the entry, and entries written before the
bytes moved (an inline ``raw`` field) still show and replay.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from esafety.events.envelope import Event
from esafety.events.publish import encode_event
from esafety.workers.app import App
from esafety.workers.cli.main import build_cli
from esafety.workers.quarantine import QuarantineBox
from typer.testing import CliRunner

from esafety.testing import fake_app
from tests.conftest import NOW
from tests.helpers import post

TEXT = "MARKER-QBOX Zebulon Quixworth on 07700 900123"


def _body(post_id: str) -> bytes:
    return json.dumps(post(post_id, "m-qbox", TEXT, id=f"ev-{post_id}")).encode()


def _sender(app: App) -> Any:
    def send(event: Event) -> None:
        app.engine.handle_event(encode_event(event).decode())

    return send


def _kept(app: App, raw: bytes, event_id: str) -> str:
    assert app.store.quarantine(
        raw=raw, error="case missing", stage="consume", at=NOW, event_id=event_id, dedup=event_id
    )
    return app.store.client.xrange(app.store.keys.quarantine)[-1][0].decode()


def test_the_entry_holds_a_hash_and_the_bytes_are_apart() -> None:
    app = fake_app(NOW)
    raw = _body("q1")
    entry_id = _kept(app, raw, "ev-q1")
    box = QuarantineBox(app.store)
    [(_, fields)] = app.store.client.xrange(app.store.keys.quarantine)
    assert not any(b"MARKER" in v for v in fields.values())
    assert set(fields) == {
        b"error",
        b"stage",
        b"at",
        b"line",
        b"event_id",
        b"dedup",
        b"sha256",
        b"size",
    }
    entry = box.get(entry_id)
    assert entry is not None
    assert (entry.sha256, entry.size) == (hashlib.sha256(raw).hexdigest(), len(raw))
    assert "MARKER" not in json.dumps([e.as_dict() for e in box.entries()])
    assert box.raw(entry_id) == raw
    assert box.raw("0-1") is None


def test_replay_reads_the_bytes_and_removes_them_with_the_entry() -> None:
    app = fake_app(NOW)
    entry_id = _kept(app, _body("q2"), "ev-q2")
    before = app.store.stats()["quarantined"]
    result = QuarantineBox(app.store).replay(entry_id, _sender(app), wait_s=5)
    assert result.outcome == "accepted", result
    assert app.store.case("post:q2") is not None
    assert app.store.client.xlen(app.store.keys.quarantine) == 0
    assert not app.store.client.exists(app.store.keys.quarantine_raw)
    assert app.store.stats()["quarantined"] == before - 1


def test_an_entry_with_its_bytes_inline_still_shows_and_replays() -> None:
    """Written before the bytes moved to the evidence keys."""
    app = fake_app(NOW)
    raw = _body("q3")
    old = app.store.client.xadd(
        app.store.keys.quarantine,
        {"raw": raw, "error": "case missing", "stage": "consume", "at": "t", "event_id": "ev-q3"},
    ).decode()
    app.store.client.hincrby(app.store.keys.stats, "quarantined", 1)
    box = QuarantineBox(app.store)
    entry = box.get(old)
    assert entry is not None and entry.size == len(raw)
    assert entry.sha256 == hashlib.sha256(raw).hexdigest()
    assert box.raw(old) == raw
    assert box.replay(old, _sender(app), wait_s=5).outcome == "accepted"
    assert app.store.case("post:q3") is not None
    assert box.entries() == []


def test_a_forged_event_keeps_no_bytes_and_is_not_replayed() -> None:
    app = fake_app(NOW)
    entry_id = _kept(app, b"", "ev-forged")
    box = QuarantineBox(app.store)
    assert not app.store.client.exists(app.store.keys.quarantine_raw)
    assert box.raw(entry_id) == b""
    result = box.replay(entry_id, _sender(app), wait_s=1)
    assert result.outcome == "invalid" and "not kept" in result.detail
    assert [e.id for e in box.entries()] == [entry_id]


def test_show_says_that_raw_prints_content() -> None:
    result = CliRunner().invoke(build_cli(), ["quarantine", "show", "--help"])
    assert result.exit_code == 0
    assert "CONTENT" in result.stdout and "evidence" in result.stdout


def test_quarantined_bytes_are_removed_after_the_policys_retention() -> None:
    """retention.quarantine_days: a sweep removes the bytes of entries quarantined before
    the cutoff, oldest first, keeps the entries (reason, hash, size), and a replay of one
    says why it cannot; later entries keep their bytes; a second sweep removes nothing."""
    from datetime import timedelta

    from esafety.workers.evidence import EvidenceStore

    app = fake_app(NOW)
    old_raw, new_raw = _body("q-old"), _body("q-new")
    old = _kept(app, old_raw, "ev-q-old")
    app.store.quarantine(
        raw=new_raw,
        error="case missing",
        stage="consume",
        at=NOW + timedelta(days=60),
        event_id="ev-q-new",
        dedup="ev-q-new",
    )
    new = app.store.client.xrange(app.store.keys.quarantine)[-1][0].decode()
    assert app.policy.retention.quarantine_days == 90
    evidence = app.evidence
    assert isinstance(evidence, EvidenceStore)
    box = QuarantineBox(app.store)

    app.clock.advance_to(NOW + timedelta(days=89))  # type: ignore[attr-defined]
    assert evidence.sweep_quarantine() == 0 and box.raw(old) == old_raw
    app.clock.advance_to(NOW + timedelta(days=91))  # type: ignore[attr-defined]
    assert evidence.sweep_quarantine() == 1
    assert box.raw(old) == b"" and box.raw(new) == new_raw
    kept = box.get(old)
    assert kept is not None and kept.size == len(old_raw)
    assert kept.sha256 == hashlib.sha256(old_raw).hexdigest()
    assert evidence.sweep_quarantine() == 0
    result = box.replay(old, _sender(app), wait_s=0.1)
    assert result.outcome == "invalid" and "retention" in result.detail
