"""``esafety report`` (workers/period_report.py): a period's figures from the audit
trail, counts only; on the embedded path with the flows' helpers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from esafety.workers.period_report import period_report

from tests.unit.test_flows import allegation, at, envelope, post, review, run


def _complaint(cid: str, time: str) -> dict[str, Any]:
    data = {"complaint_id": cid, "complainant_ref": "parent-ref-9", "text": "REPORT-MARKER-1"}
    return envelope("esafety.complaint.received", data, source="inbox/complaints", time=at(time))


def _events() -> list[dict[str, Any]]:
    return [
        allegation("a1", "grooming", "24T10:00:00"),  # 1 h to acknowledge: missed at 11:00
        _complaint("k1", "24T10:00:00"),  # 48 h to answer
        review("allegation:a1", "acknowledge", "lead-7", "24T11:30:00"),
        review("complaint:k1", "acknowledge", "lead-7", "24T12:00:00"),
        post("p1", "m-report", "this is shit REPORT-MARKER-2", "24T13:00:00"),
        post("p2", "m-report", "more shit here", "24T14:00:00"),
        post("p3", "m-other", "see you at the match", "24T15:00:00"),
    ]


def test_figures_count_what_the_audit_trail_holds() -> None:
    _, app = run(_events(), until="2026-11-24T16:00:00Z")
    figures = period_report(app.store)
    assert figures["cases_opened"] == {"allegation": 1, "complaint": 1, "post": 3}
    assert figures["cases_closed"]["post"] == {"no_action": 1, "suspended": 1, "warned": 1}
    assert figures["screening_rules"] == {"profanity": 2}
    assert figures["member_steps"]["warnings"] == 2
    assert figures["member_steps"]["temporary_removals"] == 1
    assert figures["deadlines_missed"] == {"allegation": 1}
    assert figures["notices"]["dsl_alert"] == 3  # two escalations and one repeat
    allegations = figures["first_response"]["allegation"]
    assert allegations["escalated"] == allegations["answered"] == 1
    assert allegations["median_s"] == 5400 and allegations["by_deadline"] == 0
    complaints = figures["first_response"]["complaint"]
    assert complaints["by_deadline"] == complaints["with_deadline"] == 1
    assert len(figures["policy_versions"]) == 1


def test_a_period_counts_only_its_own_entries() -> None:
    _, app = run(_events(), until="2026-11-24T16:00:00Z")
    afternoon = period_report(app.store, since=datetime(2026, 11, 24, 12, 30, tzinfo=UTC))
    assert afternoon["cases_opened"] == {"post": 3}
    assert afternoon["deadlines_missed"] == {} and afternoon["first_response"] == {}
    morning = period_report(app.store, until=datetime(2026, 11, 24, 12, 30, tzinfo=UTC))
    assert morning["cases_opened"] == {"allegation": 1, "complaint": 1}
    assert morning["screening_rules"] == {}


def test_an_unanswered_escalation_is_counted_as_such() -> None:
    _, app = run([allegation("a9", "abuse", "24T10:00:00")], until="2026-11-24T10:30:00Z")
    row = period_report(app.store)["first_response"]["allegation"]
    assert (row["escalated"], row["answered"], row["unanswered"]) == (1, 0, 1)
    assert row["median_s"] is None


def test_the_figures_hold_no_ids_refs_or_content() -> None:
    _, app = run(_events(), until="2026-11-24T16:00:00Z")
    text = json.dumps(period_report(app.store))
    for needle in ("REPORT-MARKER", "m-report", "m-other", "parent-ref-9", "lead-7", "a1", "p1"):
        assert needle not in text, needle


def test_a_look_at_the_evidence_is_not_a_first_response() -> None:
    _, app = run([allegation("a1", "grooming", "24T10:00:00")], until="2026-11-24T10:04:00Z")
    app.clock.advance_to(datetime(2026, 11, 24, 10, 5, tzinfo=UTC))
    app.evidence.view("allegation:a1", "lead-7")
    row = period_report(app.store)["first_response"]["allegation"]
    assert (row["answered"], row["unanswered"], row["by_deadline"]) == (0, 1, 0)


def test_a_period_given_in_another_timezone_means_the_same_instant() -> None:
    _, app = run(_events(), until="2026-11-24T16:00:00Z")
    plus_two = timezone(timedelta(hours=2))
    local = period_report(app.store, since=datetime(2026, 11, 24, 14, 30, tzinfo=plus_two))
    utc = period_report(app.store, since=datetime(2026, 11, 24, 12, 30, tzinfo=UTC))
    assert local == utc and local["period"]["since"] == "2026-11-24T12:30:00Z"


def test_rules_count_posts_only_and_outcomes_stay_as_closed() -> None:
    about = {"about_post_id": "p9"}
    complaint = _complaint("k9", "24T11:00:00")
    complaint["data"] |= about
    events = [
        post("p9", "m-report", "see you at the match", "24T10:00:00"),
        complaint,
        review("complaint:k9", "uphold", "lead-7", "25T11:00:00"),  # sanctions p9 later
    ]
    _, app = run(events, until="2026-11-25T12:00:00Z")
    day_one = period_report(app.store, until=datetime(2026, 11, 25, tzinfo=UTC))
    assert day_one["cases_closed"]["post"] == {"no_action": 1}  # as it closed on day one
    profane = [
        post("p8", "m-report", "this is shit", "24T10:00:00"),
        _complaint("k8", "24T11:00:00")
        | {
            "data": {
                "complaint_id": "k8",
                "about_post_id": "p8",
                "complainant_ref": "parent-ref-9",
                "text": "please look",
            }
        },
    ]
    _, app = run(profane, until="2026-11-24T12:00:00Z")
    assert period_report(app.store)["screening_rules"] == {"profanity": 1}
