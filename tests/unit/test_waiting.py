"""``cases --waiting`` (workers/waiting.py): open cases a lead may decide now, overdue
first, then by deadline; each with its pending deadline from the timer index."""

from __future__ import annotations

from datetime import UTC, datetime

from esafety.workers.cli.read_cmd import _late
from esafety.workers.waiting import deadline_of, waiting_rows

from tests.unit.test_flows import allegation, at, envelope, review, run


def _complaint(cid: str, time: str) -> dict[str, object]:
    data = {"complaint_id": cid, "complainant_ref": f"parent-{cid}", "text": "WAIT-MARKER"}
    return envelope("esafety.complaint.received", data, source="inbox/complaints", time=at(time))


def _events() -> list[dict[str, object]]:
    return [
        _complaint("k3", "24T09:00:00"),
        review("complaint:k3", "close", "dsl", "24T09:30:00"),  # closed: waits on no one
        _complaint("k1", "24T10:00:00"),  # a reply due 48 h later: 26T10:00
        allegation("a1", "cyberbullying", "24T11:00:00"),  # acknowledge in 24 h: 25T11:00
        _complaint("k2", "24T12:00:00"),  # due 26T12:00
    ]


def test_overdue_first_then_by_deadline_and_closed_cases_left_out() -> None:
    _, app = run(_events(), until="2026-11-24T13:00:00Z")
    now = datetime(2026, 11, 26, 11, 0, tzinfo=UTC)  # k1 and a1 late, k2 not yet
    rows = waiting_rows(app.store, now)
    assert [r["case_id"] for r in rows] == ["allegation:a1", "complaint:k1", "complaint:k2"]
    assert [r["overdue"] for r in rows] == [True, True, False]
    assert rows[0]["deadline"] == "2026-11-25T11:00:00Z"
    assert rows[0]["deadline_kind"] == "alert_deadline"
    assert rows[1]["overdue_s"] == 3600 and rows[2]["overdue_s"] == 0
    assert "close" in rows[1]["allowed_decisions"]
    assert "WAIT-MARKER" not in repr(rows)


def test_before_any_deadline_nothing_is_overdue_and_order_is_by_deadline() -> None:
    _, app = run(_events(), until="2026-11-24T13:00:00Z")
    rows = waiting_rows(app.store, datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    assert [r["case_id"] for r in rows] == ["allegation:a1", "complaint:k1", "complaint:k2"]
    assert not any(r["overdue"] for r in rows)


def test_a_case_that_missed_a_deadline_comes_before_nearer_deadlines() -> None:
    _, app = run(_events(), until="2026-11-25T12:00:00Z")  # a1's alert repeated at 25T11:00
    rows = waiting_rows(app.store, datetime(2026, 11, 25, 12, 0, tzinfo=UTC))
    assert [r["case_id"] for r in rows] == ["allegation:a1", "complaint:k1", "complaint:k2"]
    first = rows[0]
    assert first["escalation_level"] == 1 and first["deadline"] == "2026-11-26T11:00:00Z"
    assert not any(r["overdue"] for r in rows)  # the repeat started a new deadline


def test_a_case_seen_after_missed_deadlines_ranks_below_a_running_deadline() -> None:
    events = [
        allegation("a5", "cyberbullying", "24T08:00:00"),  # 24 h: missed at 25T08:00
        review("allegation:a5", "acknowledge", "dsl", "25T09:00:00"),  # seen: no deadline
        allegation("a6", "grooming", "25T09:30:00"),  # due 25T10:30, not seen
    ]
    _, app = run(events, until="2026-11-25T10:00:00Z")
    rows = waiting_rows(app.store, datetime(2026, 11, 25, 10, 0, tzinfo=UTC))
    assert [r["case_id"] for r in rows] == ["allegation:a6", "allegation:a5"]
    assert rows[1]["escalation_level"] == 1 and rows[1]["deadline"] is None


def test_a_decision_recorded_takes_the_case_off_the_list() -> None:
    events = [*_events(), review("complaint:k1", "close", "dsl", "24T12:30:00")]
    _, app = run(events, until="2026-11-24T13:00:00Z")
    rows = waiting_rows(app.store, datetime(2026, 11, 26, 11, 0, tzinfo=UTC))
    assert "complaint:k1" not in [r["case_id"] for r in rows]
    closed = app.store.case("complaint:k1")
    assert closed is not None and deadline_of(app.store, closed) is None


def test_lateness_reads_in_the_largest_whole_unit() -> None:
    assert [_late(s) for s in (5, 61, 3_600, 52_200, 200_000)] == [
        "5 s",
        "1 min",
        "1 h",
        "14 h",
        "2 d",
    ]
