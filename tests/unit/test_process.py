"""``process`` end to end, embedded: the acceptance checks of issue 3."""

from __future__ import annotations

import json
from pathlib import Path

from esafety.workers.app import build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.process import Processor
from esafety.workers.settings import Settings

from tests.conftest import EXAMPLES
from tests.helpers import envelope, jsonl, post


def run(text: str) -> dict:
    app = build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock())
    with Processor(app) as processor:
        return processor.run(text.splitlines())


def by_case(report: dict) -> dict[str, dict]:
    return {row["case_id"]: row for row in report["cases"]}


def test_clean_then_two_breaches_warns_then_suspends() -> None:
    report = run(
        jsonl(
            [
                post("p1", "m1", "Lovely photos from the fair today", minute=1),
                post("p2", "m1", "what a load of shit this is", minute=2),
                post("p3", "m1", "oh fuck off", minute=3),
            ]
        )
    )
    cases = by_case(report)
    assert [cases[f"post:p{i}"]["outcome"] for i in (1, 2, 3)] == [
        "no_action",
        "warned",
        "suspended",
    ]
    assert report["members"] == [
        {
            "member_id": "m1",
            "status": "suspended",
            "warnings": 2,
            "suspended_until": "2026-12-24T10:03:00Z",
        }
    ]
    kinds = [e["kind"] for e in report["effects"]]
    assert kinds == ["delete_post", "warning_notice", "delete_post", "removal_notice"]
    assert report["timers"] == [
        {"kind": "suspension_expiry", "member_id": "m1", "due": "2026-12-24T10:03:00Z"}
    ]


def test_threat_removes_author_on_first_post() -> None:
    report = run(jsonl([post("p9", "m9", "I'll hurt your kid if you post that again")]))
    case = by_case(report)["post:p9"]
    assert (case["state"], case["outcome"], case["rules"]) == ("escalation", "removed", ["threat"])
    assert report["members"][0]["status"] == "removed"
    assert {e["kind"] for e in report["effects"]} == {"delete_post", "removal_notice", "dsl_alert"}


def test_same_file_twice_gives_same_cases_members_effects() -> None:
    events = [post("p1", "m1", "shit"), post("p2", "m1", "fuck"), post("p3", "m2", "hello")]
    once = run(jsonl(events))
    twice = run(jsonl(events + events))
    for key in ("cases", "members", "effects"):
        assert once[key] == twice[key]
    assert twice["events"]["duplicates"] == 3
    assert once["events"] == {"accepted": 3, "quarantined": 0, "duplicates": 0}


def test_a_source_and_id_reused_for_another_event_is_a_duplicate() -> None:
    """One (source, id), one event: the same pair about another member, or a consent
    record, changes nothing and counts as a duplicate (issue 5), whatever it is about."""
    first = post("p1", "m1", "shit", id="same")
    reused = [
        post("p2", "m2", "fuck", id="same"),
        envelope(
            "esafety.consent.recorded",
            {"child_id": "c1", "purposes": ["facebook_group"]},
            id="same",
        ),
    ]
    report = run(jsonl([first, *reused]))
    assert report["events"] == {"accepted": 1, "quarantined": 0, "duplicates": 2}
    assert [row["case_id"] for row in report["cases"]] == ["post:p1"]
    assert [m["member_id"] for m in report["members"]] == ["m1"]


def test_report_is_deterministic_byte_for_byte() -> None:
    text = (EXAMPLES / "demo.jsonl").read_text()
    first, second = run(text), run(text)
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert first["effects"], "the demo must produce effects"


def test_demo_exercises_every_flow() -> None:
    report = run((EXAMPLES / "demo.jsonl").read_text())
    outcomes = {row["outcome"] for row in report["cases"]}
    assert {
        "no_action",
        "warned",
        "suspended",
        "removed",
        "deleted",
        "overturned",
        "left",
    } <= outcomes
    kinds = {e["kind"] for e in report["effects"]}
    assert {
        "delete_post",
        "warning_notice",
        "removal_notice",
        "dsl_alert",
        "guardian_notice",
        "complainant_ack",
        "external_referral",
        "appeal_outcome_notice",
        "reinstatement_notice",
    } <= kinds
    assert len(report["quarantine"]) == 4
    assert all(q["line"] and q["error"] for q in report["quarantine"])


def test_malformed_lines_are_quarantined_with_their_line_and_field() -> None:
    report = run(
        jsonl(
            [
                "not json at all",
                envelope("esafety.post.submitted", {"post_id": "p1", "text": "hi"}, id="bad-1"),
                envelope("esafety.nope", {}, id="bad-2"),
                post("p2", "m2", "fine"),
            ]
        )
    )
    errors = {q["line"]: q["error"] for q in report["quarantine"]}
    assert "malformed JSON" in errors[1]
    assert "data.member_id" in errors[2] and "bad-1" in errors[2]
    assert "unknown event type" in errors[3]
    assert report["events"]["accepted"] == 1


def test_every_step_writes_one_audit_entry_in_order(embedded_app) -> None:  # type: ignore[no-untyped-def]
    with Processor(embedded_app) as processor:
        processor.run(jsonl([post("p1", "m1", "shit")]).splitlines())
    entries = embedded_app.store.audit("post:p1")
    assert [(e.from_, e.to, e.trigger) for e in entries] == [
        ("received", "screening", "screen"),
        ("screening", "warning", "warn"),
        ("warning", "closed", "close"),
    ]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[1].prev_hash == entries[0].hash
    assert all(e.policy_version == embedded_app.policy.stamp for e in entries)


def test_cli_process_json(tmp_path: Path) -> None:
    from esafety.workers.cli.main import build_cli
    from typer.testing import CliRunner

    file = tmp_path / "events.jsonl"
    file.write_text(jsonl([post("p1", "m1", "shit")]))
    result = CliRunner().invoke(build_cli(), ["process", str(file), "--json", "--no-progress"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(report) >= {"events", "cases", "members", "effects", "quarantine", "timers"}
    assert report["cases"][0]["outcome"] == "warned"
