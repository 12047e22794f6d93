"""A member's request to leave (S4) is the case ``member:<id>`` on the member's own
chain; the member's later steps carry that chain on. An evidence step on the case
afterwards (a lead's view, an erasure, the retention sweep) must continue from the
chain's last entry, not from the case's own record: a fork fails ``audit verify``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from esafety.workers.audit_export import read_store
from esafety.workers.audit_verify import verify_records
from esafety.workers.signing import load_public_keys

from tests.unit.test_flows import at, envelope, post, review, run


def _appeal(aid: str, member: str, case_id: str, time: str) -> dict[str, Any]:
    data = {"appeal_id": aid, "member_id": member, "case_id": case_id, "text": "sorry"}
    return envelope("esafety.appeal.lodged", data, time=at(time))


def _leave(member: str, time: str) -> dict[str, Any]:
    return envelope("esafety.member.removal_requested", {"member_id": member}, time=at(time))


def test_an_evidence_view_after_a_member_step_continues_the_chain() -> None:
    _, app = run(
        [
            post("p1", "m1", "this is shit", "24T10:00:00"),
            _appeal("ap1", "m1", "post:p1", "24T10:10:00"),
            _leave("m1", "24T10:20:00"),
            review("appeal:ap1", "overturn", "dsl", "24T10:30:00"),  # a member step after
        ],
        until="2026-11-24T11:00:00Z",
    )
    case, member = app.store.case("member:m1"), app.store.member("m1")
    assert case is not None and member is not None and member.seq > case.seq
    app.clock.advance_to(datetime(2026, 11, 24, 11, 5, tzinfo=UTC))  # type: ignore[attr-defined]
    assert app.evidence is not None
    app.evidence.view("member:m1", "lead-7")
    chain = app.store.audit("member:m1")
    assert [e.seq for e in chain] == list(range(1, len(chain) + 1))
    assert chain[-1].prev_hash == chain[-2].hash and chain[-1].trigger == "evidence_viewed"
    signer = app.engine.heads.get()  # type: ignore[union-attr]
    report = verify_records(read_store(app.store), load_public_keys([signer.public_pem]))
    assert report.ok
    after_case, after_member = app.store.case("member:m1"), app.store.member("m1")
    assert after_case is not None and after_member is not None
    assert after_case.seq == after_member.seq == chain[-1].seq
    assert after_case.head == after_member.head == chain[-1].hash
