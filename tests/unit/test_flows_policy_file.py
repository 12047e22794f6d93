"""Issue 6's flows follow the charity's own policy file, not the shipped numbers: deadlines
by category, the escalation chain, the referral body, the complaint response time and the
sanction ladder in time all come from the file named by ``ESAFETY_POLICY_PATH``.

Also: a removal for a threat lifted on appeal restores the member, and a removal at the
member's own request is immediate, recorded and carries no sanction (S4).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import esafety.workflows.policy as policy_module
from esafety.workers.app import App, build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.notifier import MemoryNotifier
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from esafety.workers.timeline import timeline_rows
from esafety.workflows.policy import DEFAULT_POLICY_PATH

from tests.helpers import envelope, jsonl
from tests.unit.test_flows import allegation, at, post, review, run, sent

START = datetime(2026, 11, 24, tzinfo=UTC)
SHIPPED = Path(policy_module.__file__).parent / DEFAULT_POLICY_PATH

# what a charity changes in its own copy of the policy file
EDITS = {
    'version = "2026.11-default.1"': 'version = "charity-own.7"',
    'chain = ["dsl", "deputy-dsl", "chair-of-trustees"]': 'chain = ["lead-a", "lead-b"]',
    "allegation_default_hours = 24": "allegation_default_hours = 12",
    "complaint_response_hours = 48": "complaint_response_hours = 3",
    "grooming = 1\n": "grooming = 2\ncyberbullying = 6\n",
    'grooming = "police"': 'grooming = "local-authority"',
    "warnings_for_removal = 2": "warnings_for_removal = 3",
    "temporary_removal_days = 30": "temporary_removal_days = 7",
}


def charity_app(tmp_path: Path) -> App:
    text = SHIPPED.read_text("utf-8")
    for old, new in EDITS.items():
        assert text.count(old) == 1, old  # the shipped file still reads as this test expects
        text = text.replace(old, new)
    path = tmp_path / "charity_policy.toml"
    path.write_text(text, "utf-8")
    return build_app(
        Settings(redis_url=None, policy_path=str(path)),
        embedded=True,
        clock=VirtualClock(START),
        notifier=MemoryNotifier(),
    )


def process(app: App, events: list[dict[str, Any]], until: str) -> dict[str, Any]:
    stop = datetime.fromisoformat(until.replace("Z", "+00:00"))
    with Processor(app) as processor:
        report: dict[str, Any] = processor.run(jsonl(events).splitlines(), until=stop)
    return report


def alerts(app: App, case_id: str) -> list[tuple[str, str, str]]:
    return [(k, r, when) for k, r, when in sent(app, case_id) if k != "complainant_ack"]


def test_allegation_deadlines_chain_and_referral_come_from_the_policy_file(tmp_path: Path) -> None:
    app = charity_app(tmp_path)
    process(
        app,
        [
            allegation("g1", "grooming", "24T10:00:00"),
            allegation("b1", "cyberbullying", "24T10:00:00"),
            allegation("o1", "other", "24T10:00:00"),
            review("allegation:g1", "refer_external", "lead-a", "24T15:00:00"),
        ],
        until=at("24T23:00:00"),
    )
    assert alerts(app, "allegation:g1") == [
        ("dsl_alert", "lead-a", "2026-11-24T10:00:00Z"),
        ("dsl_alert", "lead-b", "2026-11-24T12:00:00Z"),  # 2 hours, not the shipped 1
        ("dsl_alert", "lead-b", "2026-11-24T14:00:00Z"),  # the end of a two-ref chain
        ("external_referral", "local-authority", "2026-11-24T15:00:00Z"),
    ]
    assert alerts(app, "allegation:b1") == [
        ("dsl_alert", "lead-a", "2026-11-24T10:00:00Z"),
        ("dsl_alert", "lead-b", "2026-11-24T16:00:00Z"),  # its own category: 6 hours
        ("dsl_alert", "lead-b", "2026-11-24T22:00:00Z"),
    ]
    assert alerts(app, "allegation:o1") == [
        ("dsl_alert", "lead-a", "2026-11-24T10:00:00Z"),
        ("dsl_alert", "lead-b", "2026-11-24T22:00:00Z"),  # the file's default: 12 hours
    ]
    versions = {e.policy_version.split("+")[0] for e in app.store.audit("allegation:g1")}
    assert versions == {"charity-own.7"}


def test_complaint_reminder_and_the_ladder_in_time_follow_the_policy_file(tmp_path: Path) -> None:
    app = charity_app(tmp_path)
    complaint = envelope(
        "esafety.complaint.received",
        {"complaint_id": "k1", "complainant_ref": "parent-1", "text": "please look"},
        source="inbox/complaints",
        time=at("24T10:00:00"),
    )
    report = process(
        app,
        [
            complaint,
            post("p1", "m1", "shit", "24T10:00:00"),
            post("p2", "m1", "fuck off", "24T11:00:00"),  # two warnings: not yet removal
            post("p3", "m1", "shit again", "24T12:00:00"),  # the third: 7 days out
            envelope(
                "esafety.post.submitted",
                {"post_id": "p4", "member_id": "m1", "text": "shit once more"},
                time="2026-12-05T09:00:00Z",
            ),
        ],
        until="2026-12-10T00:00:00Z",
    )
    assert ("response_reminder", "lead-a", "2026-11-24T13:00:00Z") in sent(app, "complaint:k1")
    history = [(e.trigger, e.to, e.at) for e in app.store.audit("member:m1")]
    assert history == [
        ("warn", "active", "2026-11-24T10:00:00Z"),
        ("warn", "active", "2026-11-24T11:00:00Z"),
        ("warn", "active", "2026-11-24T12:00:00Z"),
        ("suspend", "suspended", "2026-11-24T12:00:00Z"),
        ("reinstate", "active", "2026-12-01T12:00:00Z"),
        ("warn", "active", "2026-12-05T09:00:00Z"),
        ("remove", "removed", "2026-12-05T09:00:00Z"),
    ]
    assert report["members"][0]["status"] == "removed"


def test_a_threat_removal_lifted_on_appeal_restores_the_member() -> None:
    appeal = envelope(
        "esafety.appeal.lodged",
        {"appeal_id": "ap1", "member_id": "m1", "case_id": "post:p1"},
        source="inbox/appeals",
        time=at("24T12:00:00"),
    )
    report, app = run(
        [
            post("p1", "m1", "I'll hurt you", "24T10:00:00"),
            appeal,
            review("appeal:ap1", "overturn", "dsl", "24T13:00:00"),
        ]
    )
    member = report["members"][0]
    assert (member["status"], member["warnings"]) == ("active", 0)
    kinds = [(e.kind.value, e.recipient) for e in app.store.effects() if e.recipient == "m1"]
    assert kinds == [
        ("removal_notice", "m1"),
        ("appeal_outcome_notice", "m1"),
        ("reinstatement_notice", "m1"),
    ]
    rows = timeline_rows(app.store.audit("member:m1"))
    assert [(r["trigger"], r["to"]) for r in rows] == [
        ("remove", "removed"),
        ("overturn", "active"),
    ]
    assert rows[1]["actor"] == "system:commands" and "post:p1" in rows[1]["what"]


def test_removal_at_the_members_request_is_immediate_recorded_and_no_sanction() -> None:
    leave = envelope(
        "esafety.member.removal_requested", {"member_id": "m1"}, time=at("24T11:00:00")
    )
    report, app = run([post("p1", "m1", "shit", "24T10:00:00"), leave])
    member = report["members"][0]
    assert (member["status"], member["warnings"]) == ("removed", 1)  # the earlier warning only
    notices = [(k, r) for k, r, _ in sent(app, "member:m1")]
    assert notices == [("removal_notice", "m1")]
    [notice] = [e for e in app.store.effects() if e.case_id == "member:m1"]
    assert notice.detail["removal"] == "at_own_request" and notice.clauses == ("S4",)
    last = timeline_rows(app.store.audit("member:m1"))[-1]
    assert (last["at"], last["clauses"]) == ("2026-11-24T11:00:00Z", ["S4"])
    assert last["what"] == "member left at their own request (S4); no sanction"


def test_a_child_image_taken_down_reads_as_no_sanction_in_the_timeline() -> None:
    media = [{"media_id": "img-1", "depicts_children": ["c9"]}]
    report, app = run([post("p1", "m1", "Sports day", "24T10:00:00", media=media)])
    rows = timeline_rows(app.store.audit("post:p1"))
    taken_down = next(r for r in rows if r["trigger"] == "warn")
    assert taken_down["what"] == (
        "post deleted; no sanction to its author; rules: child_image_no_consent"
    )
    assert [(n["kind"], n["recipient"]) for n in taken_down["notices"]] == [
        ("delete_post", "facebook/group/test")
    ]
    assert [m["warnings"] for m in report["members"]] in ([], [0])
