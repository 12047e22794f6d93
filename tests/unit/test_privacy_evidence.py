"""The evidence store (E4): text apart from the audit, viewed with an audit entry,
erased where retention allows, expired by a scheduled job, the chain intact throughout."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from esafety.workers.app import App, build_app
from esafety.workers.audit_export import read_store
from esafety.workers.audit_verify import verify_records
from esafety.workers.clock import VirtualClock
from esafety.workers.evidence import EvidenceStore, RetentionSweeper
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from esafety.workers.signing import load_public_keys
from esafety.workflows.audit import text_hash

from tests.conftest import NOW
from tests.helpers import envelope, jsonl, post

WORDS = "what a load of shit this is"


@pytest.fixture
def app() -> App:
    app = build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock(NOW))
    events = [
        post("pe-1", "m-ev", WORDS, id="e-1"),
        post("pe-2", "m-ev", "Lovely photos from the fair", id="e-2"),
        envelope(
            "esafety.complaint.received",
            {
                "complaint_id": "ce-1",
                "complainant_ref": "par-1",
                "text": "Upset",
                "about_post_id": "pe-2",
            },
            id="e-3",
        ),
        envelope(
            "esafety.appeal.lodged",
            {"appeal_id": "ae-1", "member_id": "m-ev", "case_id": "post:pe-1", "text": "Sorry"},
            id="e-4",
        ),
    ]
    with Processor(app) as processor:
        processor.run(jsonl(events).splitlines())
    return app


def evidence(app: App) -> EvidenceStore:
    assert app.evidence is not None
    return app.evidence


def verifies(app: App) -> bool:
    signer = app.engine.heads.get()  # type: ignore[union-attr]
    report = verify_records(read_store(app.store), load_public_keys([signer.public_pem]))
    return report.ok


def raw_items(app: App, case_id: str) -> dict[bytes, bytes]:
    case = app.store.case(case_id)
    assert case is not None
    return app.store.client.hgetall(app.store.keys.evidence(case.tag, case_id))


def test_text_is_kept_apart_from_the_audit_in_the_same_commit(app: App) -> None:
    (item,) = [json.loads(v) for v in raw_items(app, "post:pe-1").values()]
    assert (item["kind"], item["by"], item["text"]) == ("post_text", "m-ev", WORDS)
    assert item["sha256"] == text_hash(WORDS)
    audit = json.dumps([e.as_dict() for e in app.store.audit("post:pe-1")])
    assert WORDS not in audit and text_hash(WORDS) in audit
    assert app.store.case("post:pe-1").text_sha256 == text_hash(WORDS)  # type: ignore[union-attr]


def test_a_redelivered_event_writes_no_second_item(app: App) -> None:
    again = json.dumps(post("pe-1", "m-ev", WORDS, id="e-1"))
    assert app.engine.handle_event(again) == "dup"
    assert len(raw_items(app, "post:pe-1")) == 1


def test_viewing_is_audited_with_who_and_the_chain_verifies(app: App) -> None:
    case, items = evidence(app).view("post:pe-1", "dsl")
    assert [i["text"] for i in items] == [WORDS]
    last = app.store.audit("post:pe-1")[-1]
    assert (last.trigger, last.actor, last.detail) == (
        "evidence_viewed",
        "human:dsl",
        {"items": 1, "viewed_by": "dsl"},
    )
    assert last.seq == case.seq + 1 and verifies(app)
    assert app.store.case("post:pe-1").head == last.hash  # type: ignore[union-attr]


def test_erasure_refuses_an_open_case_and_a_held_one_then_erases(app: App) -> None:
    tool = evidence(app)
    first = tool.erase_member("m-ev", "dpo")
    refused = dict(first.refused)
    assert "open (escalation)" in refused["appeal:ae-1"]
    assert "retention holds it until" in refused["post:pe-1"]  # closed today, 14-day hold
    assert first.erased == []
    assert raw_items(app, "post:pe-1")
    app.clock.advance_to(NOW + timedelta(days=15))  # type: ignore[attr-defined]
    second = tool.erase_member("m-ev", "dpo")
    assert sorted(second.erased) == ["post:pe-1", "post:pe-2"]
    assert [c for c, _ in second.refused] == ["appeal:ae-1"]
    assert raw_items(app, "post:pe-1") == {}
    archive = f"{app.store.keys.prefix}:ev:archive:post:pe-1"
    assert not app.store.client.exists(archive)  # the event archive's copy too
    last = app.store.audit("post:pe-1")[-1]
    assert (last.trigger, last.actor) == ("evidence_erased", "human:dpo")
    assert last.detail["reason"] == "erasure_request"
    assert raw_items(app, "complaint:ce-1")  # someone else's words about the member stay
    assert verifies(app)
    assert tool.erase_member("m-ev", "dpo").erased == []  # nothing left: no new entry


def test_retention_job_removes_expired_evidence_once(app: App) -> None:
    tool = evidence(app)
    assert tool.sweep() == 0  # nothing is past its retention yet
    app.clock.advance_to(NOW + timedelta(days=91))  # type: ignore[attr-defined]
    assert tool.sweep() == 2  # the two closed posts (90 days); the complaint keeps 365
    assert raw_items(app, "post:pe-1") == {} and raw_items(app, "complaint:ce-1")
    last = app.store.audit("post:pe-2")[-1]
    assert (last.trigger, last.actor) == ("evidence_expired", "system:retention")
    assert tool.sweep() == 0
    assert verifies(app)


def test_the_scheduled_sweeper_runs_in_the_worker(app: App) -> None:
    app.clock.advance_to(NOW + timedelta(days=91))  # type: ignore[attr-defined]
    sweeper = RetentionSweeper(evidence(app), interval=0.02)
    sweeper.after_worker_boot(app.broker, None)
    try:
        deadline = time.monotonic() + 5
        while raw_items(app, "post:pe-1") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        sweeper.before_worker_shutdown(app.broker, None)
    assert raw_items(app, "post:pe-1") == {}
