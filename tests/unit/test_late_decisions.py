"""A lead's decision dated before a case closed that arrives after the close (workers
promise no order): an action is still carried out, an acknowledgement recorded, a
second outcome refused (workflows/reviews.py). On the embedded path, events in file
order: the close first, then the earlier decisions."""

from __future__ import annotations

from typing import Any

from esafety.workers.app import App
from esafety.workers.timeline import timeline_rows

from tests.unit.test_flows import allegation, guardians, review, run, sent


def _late_run(*late: dict[str, Any]) -> tuple[dict[str, Any], App]:
    return run(
        [
            guardians("c1", "g-mum"),
            allegation("a1", "grooming", "24T10:00:00", children=["c1"]),
            review("allegation:a1", "close", "dsl", "24T12:00:00"),  # processed first
            *late,
        ],
        until="2026-11-24T13:00:00Z",
    )


def test_a_referral_and_guardian_notices_decided_before_the_close_are_carried_out() -> None:
    report, app = _late_run(
        review("allegation:a1", "acknowledge", "dsl", "24T10:30:00"),
        review("allegation:a1", "notify_parents", "dsl", "24T11:00:00"),
        review("allegation:a1", "refer_external", "dsl", "24T11:10:00", note="called them"),
    )
    kinds = [(k, r) for k, r, _ in sent(app, "allegation:a1")]
    assert ("guardian_notice", "g-mum") in kinds
    assert ("external_referral", "police") in kinds
    assert report["quarantine"] == []
    rows = timeline_rows(app.store.audit("allegation:a1"))
    late = [r for r in rows if r["trigger"] == "record"]
    assert [r["what"].split(" (")[0] for r in late] == [
        "alert acknowledged",
        "parents or carers notified",
        "referred to an external body",
    ]
    for row in late:
        assert "decided before the case closed at 2026-11-24T12:00:00Z" in row["what"]
        assert row["from"] == row["to"] == "closed"
    assert "to police" in late[2]["what"] and "carried out after it" in late[2]["what"]
    assert "recorded after it" in late[0]["what"]
    case = app.store.case("allegation:a1")
    assert case is not None and case.state.value == "closed"
    assert case.closed_at == "2026-11-24T12:00:00Z"


def test_a_decision_dated_after_the_close_is_refused() -> None:
    report, app = _late_run(review("allegation:a1", "refer_external", "dsl", "24T12:30:00"))
    [refused] = report["quarantine"]
    assert "'closed'" in refused["error"] and "refer_external" in refused["error"]
    kinds = [k for k, _, _ in sent(app, "allegation:a1")]
    assert "external_referral" not in kinds


def test_a_second_outcome_decided_before_the_close_is_still_refused() -> None:
    report, _ = _late_run(review("allegation:a1", "uphold", "dsl", "24T11:00:00"))
    [refused] = report["quarantine"]
    assert "uphold" in refused["error"]


def test_the_late_step_is_idempotent_on_redelivery() -> None:
    once = review("allegation:a1", "refer_external", "dsl", "24T11:10:00")
    report, app = _late_run(once, once)
    referrals = [k for k, _, _ in sent(app, "allegation:a1") if k == "external_referral"]
    assert referrals == ["external_referral"]
    assert report["events"]["duplicates"] >= 1


def test_guardians_are_told_at_most_once_as_in_order() -> None:
    report, app = run(
        [
            guardians("c1", "g-mum"),
            allegation("a1", "grooming", "24T10:00:00", children=["c1"]),
            review("allegation:a1", "notify_parents", "dsl", "24T11:00:00"),
            review("allegation:a1", "close", "dsl", "24T12:00:00"),
            review("allegation:a1", "notify_parents", "dsl", "24T11:30:00"),  # late, again
            review("allegation:a1", "withhold_parent_notification", "dsl", "24T11:40:00"),
        ],
        until="2026-11-24T13:00:00Z",
    )
    notices = [r for k, r, _ in sent(app, "allegation:a1") if k == "guardian_notice"]
    assert notices == ["g-mum"]  # closed from parent_notification: already told
    assert len(report["quarantine"]) == 2


def test_one_late_decision_about_the_guardians_and_no_second() -> None:
    report, app = _late_run(
        review("allegation:a1", "notify_parents", "dsl", "24T11:00:00"),
        review("allegation:a1", "notify_parents", "dsl", "24T11:05:00"),
    )
    notices = [r for k, r, _ in sent(app, "allegation:a1") if k == "guardian_notice"]
    assert notices == ["g-mum"]
    [refused] = report["quarantine"]
    assert "notify_parents" in refused["error"]
    case = app.store.case("allegation:a1")
    assert case is not None and case.late_decisions == ("notify_parents",)


def test_a_late_withhold_does_not_stop_a_later_late_notice() -> None:
    report, app = _late_run(
        review("allegation:a1", "withhold_parent_notification", "dsl", "24T11:00:00"),
        review("allegation:a1", "notify_parents", "dsl", "24T11:10:00"),  # as in order
    )
    notices = [r for k, r, _ in sent(app, "allegation:a1") if k == "guardian_notice"]
    assert notices == ["g-mum"] and report["quarantine"] == []
