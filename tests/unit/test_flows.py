"""Issue 6's safeguarding flows on the embedded path (``process``: StubBroker, fakeredis,
virtual clock): deadlines, the escalation chain, guardians, consent, the ladder in time,
complaints, appeals and refused decisions.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from esafety.workers.app import App
from esafety.workers.process import Processor
from esafety.workers.timeline import timeline_rows

from esafety.testing import fake_app
from tests.helpers import envelope, jsonl

START = datetime(2026, 11, 24, tzinfo=UTC)


def at(time: str) -> str:
    return f"2026-11-{time}Z"


def run(events: list[dict[str, Any]], until: str | None = None) -> tuple[dict[str, Any], App]:
    app = fake_app(START)
    stop = datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None
    with Processor(app) as processor:
        report = processor.run(jsonl(events).splitlines(), until=stop)
    return report, app


def sent(app: App, case_id: str) -> list[tuple[str, str, str]]:
    """(kind, recipient, delivered_at) of every notice delivered for a case, in order."""
    return [
        (d["kind"], d["recipient"], d["delivered_at"])
        for d in app.notifier.delivered  # type: ignore[attr-defined]
        if d["case_id"] == case_id
    ]


def review(case_id: str, decision: str, by: str, time: str, **extra: str) -> dict[str, Any]:
    data = {"case_id": case_id, "reviewer_ref": by, "decision": decision, **extra}
    return envelope("esafety.case.reviewed", data, source="esafety/cli", time=at(time))


def allegation(aid: str, category: str, time: str, **extra: Any) -> dict[str, Any]:
    data = {"allegation_id": aid, "reporter_ref": "staff-1", "category": category}
    data |= {"subject_role": "member", "text": "ALLEGATION-TEXT-MARKER", **extra}
    return envelope("esafety.allegation.reported", data, source="staff/forms", time=at(time))


def guardians(child: str, *refs: str, time: str = "24T08:00:00") -> dict[str, Any]:
    people = [{"guardian_ref": r, "contact": f"{r}@example.org"} for r in refs]
    return envelope(
        "esafety.guardian.registered",
        {"child_id": child, "guardians": people},
        source="staff/forms",
        time=at(time),
    )


def post(pid: str, member: str, text: str, time: str, **extra: Any) -> dict[str, Any]:
    data = {"post_id": pid, "member_id": member, "text": text, **extra}
    return envelope("esafety.post.submitted", data, time=at(time))


def test_allegation_deadline_missed_goes_up_the_chain_until_acknowledged() -> None:
    _, app = run(
        [
            allegation("a1", "grooming", "24T10:00:00"),
            review("allegation:a1", "acknowledge", "chair-of-trustees", "24T12:30:00"),
            review("allegation:a1", "refer_external", "dsl", "24T13:00:00"),
            review("allegation:a1", "close", "dsl", "24T18:00:00", note="handed over"),
        ],
        until="2026-11-25T10:00:00Z",
    )
    assert sent(app, "allegation:a1") == [
        ("dsl_alert", "dsl", "2026-11-24T10:00:00Z"),
        ("dsl_alert", "deputy-dsl", "2026-11-24T11:00:00Z"),
        ("dsl_alert", "chair-of-trustees", "2026-11-24T12:00:00Z"),
        ("external_referral", "police", "2026-11-24T13:00:00Z"),
    ]
    rows = timeline_rows(app.store.audit("allegation:a1"))
    assert [(r["actor"], r["trigger"]) for r in rows] == [
        ("system:screening", "screen"),
        ("system:screening", "escalate"),
        ("system:timers", "remind"),
        ("system:timers", "remind"),
        ("human:chair-of-trustees", "acknowledge"),
        ("human:dsl", "refer_external"),
        ("human:dsl", "close"),
    ]
    assert all("E1" in r["clauses"] for r in rows)
    assert app.store.case("allegation:a1").state.value == "closed"  # type: ignore[union-attr]


def test_other_category_waits_24_hours_and_repeats_to_the_last_ref() -> None:
    report, app = run([allegation("a2", "cyberbullying", "24T10:00:00")], until=at("28T09:00:00"))
    recipients = [r for k, r, _ in sent(app, "allegation:a2") if k == "dsl_alert"]
    assert recipients == ["dsl", "deputy-dsl", "chair-of-trustees", "chair-of-trustees"]
    assert sent(app, "allegation:a2")[1][2] == "2026-11-25T10:00:00Z"
    case = app.store.case("allegation:a2")
    assert case is not None and case.state.value == "escalation"  # only a review closes it
    assert report["timers"] == [
        {"kind": "alert_deadline", "case_id": "allegation:a2", "due": "2026-11-28T10:00:00Z"}
    ]


def test_any_recorded_decision_stops_the_repeats() -> None:
    _, app = run(
        [
            allegation("a3", "abuse", "24T10:00:00"),
            review("allegation:a3", "withhold_parent_notification", "dsl", "24T10:30:00"),
        ],
        until=at("24T20:00:00"),
    )
    assert [k for k, _, _ in sent(app, "allegation:a3")] == ["dsl_alert"]


def test_guardian_notice_on_decision_never_to_the_subject_and_names_only_their_child() -> None:
    _, app = run(
        [
            guardians("c1", "g-mum", "g-dad"),
            guardians("c2", "g-other"),
            allegation("a4", "abuse", "24T10:00:00", subject_ref="g-dad", children=["c1", "c2"]),
            review("allegation:a4", "notify_parents", "dsl", "24T10:20:00"),
            review("allegation:a4", "close", "dsl", "24T11:00:00"),
        ]
    )
    notices = [e for e in app.store.effects() if e.kind.value == "guardian_notice"]
    assert sorted((e.recipient, e.detail["child_id"]) for e in notices) == [
        ("g-mum", "c1"),
        ("g-other", "c2"),
    ]
    step = next(e for e in app.store.audit("allegation:a4") if e.trigger == "notify_parents")
    assert step.detail["withheld_from_subject"] == 1
    assert step.actor == "human:dsl" and step.clauses == ("E2",)


def test_allegation_guardians_are_not_told_without_a_decision() -> None:
    _, app = run(
        [guardians("c1", "g1"), allegation("a5", "grooming", "24T10:00:00", children=["c1"])],
        until=at("24T15:00:00"),
    )
    assert not [e for e in app.store.effects() if e.kind.value == "guardian_notice"]


def test_consent_withdrawn_then_image_posted_is_removed_and_guardians_told() -> None:
    media = [{"media_id": "img-1", "depicts_children": ["c7"]}]

    def consent(kind: str, time: str) -> dict[str, Any]:
        data = {"child_id": "c7", "purposes": ["facebook_group"]}
        return envelope(f"esafety.consent.{kind}", data, source="staff/forms", time=at(time))

    report, app = run(
        [
            guardians("c7", "g7"),
            consent("recorded", "24T08:30:00"),
            post("p1", "m1", "Sports day!", "24T09:00:00", media=media),
            consent("withdrawn", "24T10:00:00"),
            post("p2", "m1", "More from sports day", "24T10:00:01", media=media),
        ]
    )
    outcomes = {c["case_id"]: c["outcome"] for c in report["cases"]}
    assert outcomes == {"post:p1": "no_action", "post:p2": "deleted"}
    assert [(k, r) for k, r, _ in sent(app, "post:p2")] == [
        ("delete_post", "facebook/group/test"),
        ("guardian_notice", "g7"),
    ]
    assert report["members"][0]["warnings"] == 0  # posted in good faith: no warning (E3)


def test_suspension_expires_by_itself_and_the_next_breach_removes_for_good() -> None:
    report, app = run(
        [
            post("p1", "m1", "what a load of shit", "24T10:00:00"),
            post("p2", "m1", "oh fuck off", "24T11:00:00"),
            post("p3", "m1", "this is shit", "26T12:00:00"),  # while suspended: deleted only
            envelope(
                "esafety.post.submitted",
                {"post_id": "p5", "member_id": "m1", "text": "shit again"},
                time="2026-12-30T09:00:00Z",
            ),
        ]
    )
    history = app.store.audit("member:m1")
    assert [(e.trigger, e.to, e.at) for e in history] == [
        ("warn", "active", "2026-11-24T10:00:00Z"),
        ("warn", "active", "2026-11-24T11:00:00Z"),
        ("suspend", "suspended", "2026-11-24T11:00:00Z"),
        ("reinstate", "active", "2026-12-24T11:00:00Z"),
        ("warn", "active", "2026-12-30T09:00:00Z"),
        ("remove", "removed", "2026-12-30T09:00:00Z"),
    ]
    removal = history[-1]
    assert removal.detail["removal"] == "permanent" and "S2" in removal.clauses
    assert timeline_rows(history)[-1]["what"] == (
        "member removed (permanent: warnings reached the policy's count (S2))"
    )
    kinds = [k for k, _, _ in sent(app, "post:p2")]
    assert kinds == ["delete_post", "removal_notice", "reinstatement_notice"]
    assert report["timers"] == []


def test_a_stale_expiry_does_nothing_after_the_member_left() -> None:
    leave = envelope(
        "esafety.member.removal_requested", {"member_id": "m1"}, time=at("25T09:00:00")
    )
    report, app = run(
        [
            post("p1", "m1", "shit", "24T10:00:00"),
            post("p2", "m1", "fuck off", "24T11:00:00"),
            leave,
        ],
        until="2027-01-30T00:00:00Z",
    )
    assert report["members"][0]["status"] == "removed"
    assert "reinstatement_notice" not in [e["kind"] for e in report["effects"]]
    left = app.store.audit("member:m1")[-1]
    assert (left.trigger, left.clauses, left.actor) == ("close", ("S4",), "system:screening")


def test_complaint_acknowledged_reminded_then_closed() -> None:
    complaint = envelope(
        "esafety.complaint.received",
        {"complaint_id": "k1", "complainant_ref": "parent-3", "text": "COMPLAINT-MARKER"},
        source="inbox/complaints",
        time=at("24T10:00:00"),
    )
    _, app = run(
        [complaint, review("complaint:k1", "close", "deputy-dsl", "28T12:00:00")],
        until="2026-12-10T00:00:00Z",
    )
    assert sent(app, "complaint:k1") == [
        ("complainant_ack", "parent-3", "2026-11-24T10:00:00Z"),
        ("dsl_alert", "dsl", "2026-11-24T10:00:00Z"),
        ("response_reminder", "dsl", "2026-11-26T10:00:00Z"),
        ("response_reminder", "deputy-dsl", "2026-11-28T10:00:00Z"),
    ]
    last = app.store.audit("complaint:k1")[-1]
    assert (last.trigger, last.actor, last.clauses) == ("close", "human:deputy-dsl", ("S5",))
    words = [r["what"] for r in timeline_rows(app.store.audit("complaint:k1"))]
    assert words[2] == (
        "response deadline passed; reminder sent (missed 2026-11-26T10:00:00Z; level 1; "
        "next deadline 2026-11-28T10:00:00Z)"
    )


def test_appeal_overturns_a_warning_which_stops_counting() -> None:
    appeal = envelope(
        "esafety.appeal.lodged",
        {"appeal_id": "ap1", "member_id": "m1", "case_id": "post:p1", "text": "APPEAL-MARKER"},
        source="inbox/appeals",
        time=at("24T12:00:00"),
    )
    report, app = run(
        [
            post("p1", "m1", "shit", "24T10:00:00"),
            appeal,
            review("appeal:ap1", "overturn", "deputy-dsl", "24T13:00:00"),
            post("p2", "m1", "fuck this", "25T10:00:00"),
        ]
    )
    member = report["members"][0]
    assert (member["status"], member["warnings"]) == ("active", 1)  # p2 warns, does not remove
    outcomes = {c["case_id"]: c["outcome"] for c in report["cases"]}
    assert outcomes["appeal:ap1"] == "overturned" and outcomes["post:p2"] == "warned"
    assert ("appeal_outcome_notice", "m1") in [(k, r) for k, r, _ in sent(app, "appeal:ap1")]
    overturn = next(e for e in app.store.audit("member:m1") if e.trigger == "overturn")
    assert overturn.actor == "system:commands" and overturn.detail["case"] == "post:p1"


def test_an_overturn_lifts_the_removal_the_warning_caused() -> None:
    appeal = envelope(
        "esafety.appeal.lodged",
        {"appeal_id": "ap2", "member_id": "m1", "case_id": "post:p2"},
        time=at("24T12:00:00"),
    )
    report, app = run(
        [
            post("p1", "m1", "shit", "24T10:00:00"),
            post("p2", "m1", "fuck off", "24T11:00:00"),
            appeal,
            review("appeal:ap2", "overturn", "dsl", "24T13:00:00"),
        ],
        until="2027-01-30T00:00:00Z",
    )
    member = report["members"][0]
    assert (member["status"], member["warnings"], member["suspended_until"]) == ("active", 1, None)
    assert report["timers"] == []  # the expiry went stale: no second reinstatement
    kinds = [e.kind.value for e in app.store.effects() if e.recipient == "m1"]
    assert kinds.count("reinstatement_notice") == 1


def test_refused_decisions_are_quarantined_naming_case_state_and_allowed() -> None:
    report, _ = run(
        [
            allegation("a6", "other", "24T10:00:00"),
            review("allegation:a6", "notify_parents", "dsl", "24T10:10:00"),
            review("allegation:a6", "withhold_parent_notification", "dsl", "24T10:20:00"),
            review("allegation:a6", "close", "dsl", "24T10:30:00"),
            review("allegation:a6", "uphold", "dsl", "24T10:40:00"),
            post("p1", "m1", "hello", "24T11:00:00"),
            review("post:p1", "overturn", "dsl", "24T11:10:00"),
        ]
    )
    errors = [q["error"] for q in report["quarantine"]]
    assert len(errors) == 3
    assert "'parent_notification'" in errors[0] and "withhold_parent_notification" in errors[0]
    assert "allowed here: acknowledge, uphold, dismiss, refer_external, close" in errors[0]
    assert "'closed'" in errors[1] and "allowed here: none" in errors[1]
    assert "post:p1" in errors[2] and "'overturn'" in errors[2]


def test_notices_carry_no_text_of_any_event() -> None:
    report, app = run(
        [
            guardians("c1", "g1"),
            allegation("a7", "abuse", "24T10:00:00", children=["c1"]),
            review("allegation:a7", "notify_parents", "dsl", "24T10:05:00", note="NOTE-MARKER"),
        ],
        until=at("24T13:00:00"),
    )
    dump = repr(report) + repr(app.store.effects()) + repr(app.store.audit("allegation:a7"))
    for marker in ("ALLEGATION-TEXT-MARKER", "NOTE-MARKER", "@example.org"):
        assert marker not in dump


def test_scaled_clock_and_real_delays() -> None:
    from esafety.workers.app import clock_from_settings
    from esafety.workers.clock import ScaledClock, SystemClock, real_delay_ms
    from esafety.workers.settings import Settings

    clock = ScaledClock(START, time.time() - 10, speed=3600)
    assert abs((clock.now() - START).total_seconds() - 36_000) < 3600  # 10 s real: 10 hours
    clock = ScaledClock(START, time.time(), speed=3600)
    due = clock.now() + timedelta(hours=1)
    assert 990 <= real_delay_ms(clock, due) <= 1001  # an hour is a second
    assert real_delay_ms(clock, START) == 0  # past: no negative delay
    assert isinstance(clock_from_settings(Settings(redis_url=None)), SystemClock)
    scaled = clock_from_settings(
        Settings(redis_url=None, test_clock_epoch=START, test_clock_origin=5.0, test_clock_speed=60)
    )
    assert isinstance(scaled, ScaledClock) and (scaled.origin, scaled.speed) == (5.0, 60)


def test_a_suspension_counts_from_the_breachs_own_time_even_when_handled_late() -> None:
    """The second breach is handled after a later event moved the clock on; its 30 days
    still count from its own time, as on a worker that picked it up late."""
    report, app = run(
        [
            post("p1", "m1", "shit", "24T09:00:00"),
            post("p9", "m9", "hello", "24T12:00:00"),
            post("p2", "m1", "fuck off", "24T09:30:00"),
        ]
    )
    member = next(m for m in report["members"] if m["member_id"] == "m1")
    assert member["suspended_until"] == "2026-12-24T09:30:00Z"
    suspend = next(e for e in app.store.audit("member:m1") if e.trigger == "suspend")
    assert suspend.at == "2026-11-24T12:00:00Z"  # handled then, on the one clock


def test_an_older_consent_handled_after_a_withdrawal_does_not_bring_it_back() -> None:
    """Workers promise no order: the withdrawal (10:00) is handled before a consent given
    at 09:00; the image posted at 11:00 is still treated as without consent (E3)."""
    media = [{"media_id": "img-1", "depicts_children": ["c7"]}]
    purpose = {"child_id": "c7", "purposes": ["facebook_group"]}
    events = [
        guardians("c7", "g7"),
        envelope(
            "esafety.consent.withdrawn", purpose, source="staff/forms", time=at("24T10:00:00")
        ),
        envelope("esafety.consent.recorded", purpose, source="staff/forms", time=at("24T09:00:00")),
        post("p1", "m1", "Sports day", "24T11:00:00", media=media),
        envelope("esafety.consent.recorded", purpose, source="staff/forms", time=at("24T12:00:00")),
        post("p2", "m1", "Sports day again", "24T12:30:00", media=media),
    ]
    report, app = run(events)
    outcomes = {c["case_id"]: c["outcome"] for c in report["cases"]}
    assert outcomes == {"post:p1": "deleted", "post:p2": "no_action"}  # given again at 12:00
    record = app.store.register("c7")
    assert record is not None and record.consent_at["facebook_group"].startswith("2026-11-24T12")


def test_an_appeal_about_another_members_case_changes_nobodys_record() -> None:
    appeal = envelope(
        "esafety.appeal.lodged",
        {"appeal_id": "ap3", "member_id": "m2", "case_id": "post:p1"},
        time=at("24T12:00:00"),
    )
    report, app = run(
        [
            post("p1", "m1", "shit", "24T10:00:00"),
            appeal,
            review("appeal:ap3", "overturn", "dsl", "24T13:00:00"),
        ]
    )
    assert [(m["member_id"], m["warnings"]) for m in report["members"]] == [("m1", 1)]
    opened = app.store.audit("appeal:ap3")[0]
    assert opened.detail["appellant_is_member"] is False


class _Recorder:
    """A dispatch that records what the engine hands to the next stage."""

    def __init__(self) -> None:
        self.delivered: list[tuple[str, list[str]]] = []

    def deliver(self, tag: str, effect_ids: list[str]) -> None:
        self.delivered.append((tag, effect_ids))

    def schedule(self, timer_json: str, timer: Any) -> None:
        return None

    def command(self, command_json: str) -> None:
        return None


def test_a_review_redelivered_after_the_case_moved_on_replays_its_dispatch() -> None:
    """A worker killed between a review's commit and its acknowledgement: the review
    comes back after the next review closed the case. It was accepted, so it is a
    duplicate (not a refusal to quarantine) and its referral is dispatched again."""
    app = fake_app(START)
    recorder = _Recorder()
    app.engine.dispatch = recorder
    refer = review("allegation:a1", "refer_external", "dsl", "24T13:00:00")
    close = review("allegation:a1", "close", "dsl", "24T18:00:00", note="handed over")
    bodies = [jsonl([e]).strip() for e in (allegation("a1", "grooming", "24T10:00"), refer, close)]
    assert [app.engine.handle_event(b) for b in bodies] == ["ok", "ok", "ok"]
    [(tag, [referral])] = recorder.delivered[1:2]
    assert app.store.effect(tag, referral).kind.value == "external_referral"  # type: ignore[union-attr]
    before = app.store.stats()

    assert app.engine.handle_event(bodies[1]) == "dup"
    assert recorder.delivered[-1] == (tag, [referral])
    assert app.store.stats()["duplicates"] == before["duplicates"] + 1
    assert app.store.quarantine_entries() == []

    again = review("allegation:a1", "refer_external", "dsl", "24T19:00:00")  # a new review
    assert app.engine.handle_event(jsonl([again]).strip()) == "quarantined"
    assert len(app.store.quarantine_entries()) == 1
