"""One test (at least) per policy clause the engine enforces, through the embedded path."""

from __future__ import annotations

from typing import Any

import pytest
from esafety.workers.app import App
from esafety.workers.process import Processor
from esafety.workers.settings import Settings

from esafety.testing import fake_app
from tests.helpers import envelope, jsonl, post


def run(events: list[dict[str, Any]], until: str | None = None) -> tuple[dict[str, Any], App]:
    from datetime import datetime

    app = fake_app()
    with Processor(app) as processor:
        report = processor.run(
            jsonl(events).splitlines(),
            until=datetime.fromisoformat(until.replace("Z", "+00:00")) if until else None,
        )
    return report, app


def case(report: dict[str, Any], case_id: str) -> dict[str, Any]:
    return next(c for c in report["cases"] if c["case_id"] == case_id)


def effects(report: dict[str, Any], case_id: str | None = None) -> list[tuple[str, str]]:
    return [
        (e["kind"], e["recipient"])
        for e in report["effects"]
        if case_id is None or e["case_id"] == case_id
    ]


@pytest.mark.parametrize(
    ("clause", "rule", "text"),
    [
        ("C1", "sexual", "send nudes to me"),
        ("C2", "profanity", "what a load of bullshit"),
        ("C3", "hate", "go back to your own country"),
        ("C4", "violence", "watch the beheading video I found"),
        ("C6", "harassment", "nobody likes you, you are worthless"),
        ("C7", "spam", "Earn money from home! click here for my referral code"),
    ],
)
def test_code_of_conduct_breach_is_deleted_and_warned(clause: str, rule: str, text: str) -> None:
    """C1..C4, C6, C7 with S1: the post is deleted and its author warned."""
    report, app = run([post("p1", "m1", text)])
    row = case(report, "post:p1")
    assert rule in row["rules"] and clause in row["clauses"]
    assert row["outcome"] == "warned"
    assert ("delete_post", "facebook/group/test") in effects(report)
    assert ("warning_notice", "m1") in effects(report)
    screen = app.store.audit("post:p1")[0]
    assert clause in screen.clauses and rule in screen.rules


def test_c5_blocklisted_link_is_a_breach_and_shortener_is_reviewed() -> None:
    report, _ = run(
        [
            post("p1", "m1", "look https://www.pornhub.com/x"),
            post("p2", "m2", "tickets at https://bit.ly/abc"),
        ]
    )
    assert case(report, "post:p1")["outcome"] == "warned"
    assert "C5" in case(report, "post:p1")["clauses"]
    review = case(report, "post:p2")
    assert (review["state"], review["outcome"]) == ("escalation", "review")
    assert ("warning_notice", "m2") not in effects(report)


def test_s1_clean_post_takes_no_action() -> None:
    report, _ = run([post("p1", "m1", "See everyone at the bake sale on Saturday")])
    assert case(report, "post:p1")["outcome"] == "no_action"
    assert report["effects"] == []


def test_s2_second_warning_removes_temporarily_then_expiry_and_permanent() -> None:
    report, app = run(
        [
            post("p1", "m1", "shit", time="2026-01-01T10:00:00Z"),
            post("p2", "m1", "fuck", time="2026-01-02T10:00:00Z"),
            post("p3", "m1", "bollocks", time="2026-03-01T10:00:00Z"),
        ]
    )
    assert [case(report, f"post:p{i}")["outcome"] for i in (1, 2, 3)] == [
        "warned",
        "suspended",
        "removed",
    ]
    assert report["members"][0]["status"] == "removed"
    kinds = [k for k, _ in effects(report)]
    assert kinds.count("removal_notice") == 2 and "reinstatement_notice" in kinds
    history = [e.trigger for e in app.store.audit("member:m1")]
    assert history == ["warn", "warn", "suspend", "reinstate", "warn", "remove"]


def test_s3_threat_removes_at_once_and_alerts_dsl() -> None:
    report, _ = run([post("p1", "m1", "I know where your kids go to school")])
    row = case(report, "post:p1")
    assert (row["outcome"], row["state"]) == ("removed", "escalation")
    assert "S3" in row["clauses"] or "threat" in row["rules"]
    assert ("dsl_alert", "dsl") in effects(report)
    assert report["members"][0]["status"] == "removed"


def test_s4_member_may_leave_at_any_time() -> None:
    report, _ = run([envelope("esafety.member.removal_requested", {"member_id": "m1"})])
    assert case(report, "member:m1")["outcome"] == "left"
    assert report["members"] == [
        {"member_id": "m1", "status": "removed", "warnings": 0, "suspended_until": None}
    ]


def test_s5_complaint_acknowledged_reminded_and_closed_by_review() -> None:
    report, _ = run(
        [
            envelope(
                "esafety.complaint.received",
                {"complaint_id": "c1", "complainant_ref": "cr-1", "text": "worried"},
                time="2026-01-01T10:00:00Z",
            ),
            envelope(
                "esafety.case.reviewed",
                {"case_id": "complaint:c1", "reviewer_ref": "dsl", "decision": "close"},
                time="2026-01-04T10:00:00Z",
            ),
        ]
    )
    assert effects(report, "complaint:c1")[:2] == [
        ("complainant_ack", "cr-1"),
        ("dsl_alert", "dsl"),
    ]
    # S5 default: the first reminder goes to the DSL who owes the answer
    assert ("response_reminder", "dsl") in effects(report, "complaint:c1")
    assert case(report, "complaint:c1")["state"] == "closed"


def test_e1_allegation_escalates_with_category_deadline_and_only_review_closes() -> None:
    report, app = run(
        [
            envelope(
                "esafety.allegation.reported",
                {
                    "allegation_id": "a1",
                    "reporter_ref": "s1",
                    "category": "grooming",
                    "subject_role": "volunteer",
                },
                time="2026-01-01T10:00:00Z",
            ),
            envelope(
                "esafety.allegation.reported",
                {
                    "allegation_id": "a2",
                    "reporter_ref": "s1",
                    "category": "cyberbullying",
                    "subject_role": "member",
                },
                time="2026-01-01T10:00:00Z",
            ),
        ],
        until="2026-01-01T11:30:00Z",
    )
    assert case(report, "allegation:a1")["state"] == "escalation"
    assert ("dsl_alert", "deputy-dsl") in effects(report, "allegation:a1")
    assert ("dsl_alert", "deputy-dsl") not in effects(report, "allegation:a2")
    due = {t["case_id"]: t["due"] for t in report["timers"]}
    assert due == {"allegation:a1": "2026-01-01T12:00:00Z", "allegation:a2": "2026-01-02T10:00:00Z"}
    assert all("E1" in e.clauses for e in app.store.audit("allegation:a1")[1:])


def test_e2_guardian_notice_on_decision_never_to_the_subject() -> None:
    report, _ = run(
        [
            envelope(
                "esafety.guardian.registered",
                {
                    "child_id": "k1",
                    "guardians": [
                        {"guardian_ref": "g1", "contact": "x"},
                        {"guardian_ref": "g-subject", "contact": "y"},
                    ],
                },
            ),
            envelope(
                "esafety.allegation.reported",
                {
                    "allegation_id": "a1",
                    "reporter_ref": "s1",
                    "category": "abuse",
                    "subject_role": "member",
                    "subject_ref": "g-subject",
                    "children": ["k1"],
                },
            ),
            envelope(
                "esafety.case.reviewed",
                {"case_id": "allegation:a1", "reviewer_ref": "dsl", "decision": "notify_parents"},
            ),
        ]
    )
    notices = [r for k, r in effects(report) if k == "guardian_notice"]
    assert notices == ["g1"]
    assert case(report, "allegation:a1")["state"] == "parent_notification"


def test_e3_image_without_consent_removed_and_guardians_told_consent_respected() -> None:
    media = [{"media_id": "i1", "depicts_children": ["k1", "k2"]}]
    report, _ = run(
        [
            envelope(
                "esafety.guardian.registered",
                {"child_id": "k1", "guardians": [{"guardian_ref": "g1", "contact": "x"}]},
            ),
            envelope(
                "esafety.consent.recorded", {"child_id": "k2", "purposes": ["facebook_group"]}
            ),
            post("p1", "m1", "trip photos", media=media),
            envelope(
                "esafety.consent.recorded", {"child_id": "k1", "purposes": ["facebook_group"]}
            ),
            post("p2", "m1", "more photos", media=media),
            envelope(
                "esafety.consent.withdrawn", {"child_id": "k2", "purposes": ["facebook_group"]}
            ),
            post("p3", "m1", "last photos", media=media),
        ]
    )
    assert case(report, "post:p1")["outcome"] == "deleted"
    assert effects(report, "post:p1") == [
        ("delete_post", "facebook/group/test"),
        ("guardian_notice", "g1"),
    ]
    assert case(report, "post:p2")["outcome"] == "no_action"
    assert case(report, "post:p3")["outcome"] == "deleted"
    assert report["members"][0]["warnings"] == 0


def test_e4_personal_information_is_removed() -> None:
    report, _ = run([post("p1", "m1", "call her on 07700 900123 or mail jo@example.com")])
    row = case(report, "post:p1")
    assert "personal_info" in row["rules"] and "E4" in row["clauses"]
    assert ("delete_post", "facebook/group/test") in effects(report)


def test_e5_secrets_in_settings_are_not_printed() -> None:
    settings = Settings(redis_url="redis://worker:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings.model_dump())


def test_e6_every_entry_records_the_policy_version() -> None:
    report, app = run([post("p1", "m1", "shit")])
    versions = {e.policy_version for _, chain in app.store.iter_audit() for e in chain}
    assert versions == {app.policy.stamp}
    assert report["policy_version"] == app.policy.stamp
    assert app.policy.stamp.startswith(f"{app.policy.version}+")


def test_e7_safest_outcome_wins_when_rules_disagree() -> None:
    report, _ = run([post("p1", "m1", "shit, I'll hurt your kid")])
    row = case(report, "post:p1")
    assert row["outcome"] == "removed"
    assert {"threat", "profanity"} <= set(row["rules"])
