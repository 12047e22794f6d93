"""Deadlines and expiries on the virtual clock (issue 10): ``process --until`` fires each
timer through the same ``fire_timer`` handler the workers run, in due order, at its time.

One file holds a suspension that expires, an allegation whose deadline passes twice,
and a complaint reminder; the notifier records when each notice went out.
"""

from __future__ import annotations

from datetime import UTC, datetime

from esafety.workers.app import build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.notifier import MemoryNotifier
from esafety.workers.process import Processor
from esafety.workers.settings import Settings

from tests.helpers import envelope, jsonl, post


def _events() -> list[dict]:
    return [
        post("tp1", "m-late", "what a load of shit", time="2026-03-02T10:00:00Z", id="t-1"),
        post("tp2", "m-late", "oh fuck off", time="2026-03-02T10:05:00Z", id="t-2"),
        envelope(
            "esafety.allegation.reported",
            {
                "allegation_id": "ta1",
                "reporter_ref": "staff-1",
                "category": "grooming",
                "subject_role": "volunteer",
            },
            time="2026-03-02T12:00:00Z",
            id="t-3",
        ),
        envelope(
            "esafety.case.reviewed",
            {"case_id": "allegation:ta1", "reviewer_ref": "dsl", "decision": "acknowledge"},
            time="2026-03-02T14:30:00Z",
            id="t-5",
        ),
        envelope(
            "esafety.complaint.received",
            {"complaint_id": "tc1", "complainant_ref": "parent-ref-1", "text": "please look"},
            time="2026-03-03T09:00:00Z",
            id="t-4",
        ),
        envelope(
            "esafety.case.reviewed",
            {"case_id": "complaint:tc1", "reviewer_ref": "dsl", "decision": "close"},
            time="2026-03-06T08:00:00Z",
            id="t-6",
        ),
    ]


def _run(until: str, events: list[dict] | None = None) -> tuple[dict, list[dict[str, str]]]:
    notifier = MemoryNotifier()
    app = build_app(
        Settings(redis_url=None), embedded=True, clock=VirtualClock(), notifier=notifier
    )
    moment = datetime.fromisoformat(until.replace("Z", "+00:00")).astimezone(UTC)
    with Processor(app) as processor:
        report = processor.run(jsonl(events or _events()).splitlines(), until=moment)
    return report, notifier.delivered


def test_deadlines_and_expiry_fire_in_order_at_their_times() -> None:
    report, delivered = _run("2026-06-01T00:00:00Z")
    timed = [
        (d["delivered_at"], d["kind"], d["case_id"], d["recipient"])
        for d in delivered
        if d["kind"] in {"dsl_alert", "response_reminder", "reinstatement_notice"}
    ]
    assert timed == [
        ("2026-03-02T12:00:00Z", "dsl_alert", "allegation:ta1", "dsl"),
        # the 1-hour grooming deadline passes twice, each time one step up the chain
        ("2026-03-02T13:00:00Z", "dsl_alert", "allegation:ta1", "deputy-dsl"),
        ("2026-03-02T14:00:00Z", "dsl_alert", "allegation:ta1", "chair-of-trustees"),
        ("2026-03-03T09:00:00Z", "dsl_alert", "complaint:tc1", "dsl"),
        # 48 hours without an answer: a reminder
        ("2026-03-05T09:00:00Z", "response_reminder", "complaint:tc1", timed[4][3]),
        # the 30-day temporary removal ends by itself
        ("2026-04-01T10:05:00Z", "reinstatement_notice", "post:tp2", "m-late"),
    ]
    assert timed[4][3] in {"dsl", "deputy-dsl"}
    # the acknowledgement at 14:30 stopped the allegation's repeats
    alerts = [t for t in timed if t[2] == "allegation:ta1"]
    assert len(alerts) == 3 and all(t[0] < "2026-03-02T14:30:00Z" for t in alerts)
    members = {m["member_id"]: m for m in report["members"]}
    assert members["m-late"]["status"] == "active" and report["timers"] == []


def test_timers_not_yet_due_stay_pending_with_their_due_time() -> None:
    report, delivered = _run("2026-03-02T13:30:00Z", _events()[:3])
    kinds = [d["kind"] for d in delivered if d["case_id"] == "allegation:ta1"]
    assert kinds == ["dsl_alert", "dsl_alert"]  # first alert, then one repeat by 13:30
    pending = sorted(
        (t["kind"], t.get("case_id") or t.get("member_id"), t["due"]) for t in report["timers"]
    )
    assert pending == [
        ("alert_deadline", "allegation:ta1", "2026-03-02T14:00:00Z"),
        ("suspension_expiry", "m-late", "2026-04-01T10:05:00Z"),
    ]
