"""The sanction ladder on the member aggregate (S1, S2, S3, S4 and the policy's defaults).

Why one module: warnings, removals, expiries and appeals all change the same
count and status, and the count must stay exact however events interleave.
"""

from __future__ import annotations

from datetime import timedelta

from .ids import Clause, EffectKind, MemberStatus, Outcome, TimerKind
from .model import member_tag
from .steps import Builder, iso

__all__ = ["lift", "reinstate", "remove", "sanction_breach"]


def remove(b: Builder, *, kind: str, case_id: str, basis: str, clauses: tuple[str, ...]) -> Outcome:
    """Remove the member, temporarily or permanently; a temporary removal gets its timer."""
    member = b.member
    assert member is not None
    if member.status is MemberStatus.REMOVED:
        return Outcome.REMOVED
    detail = {"removal": kind, "basis": basis}
    if kind == "temporary":
        # counted from the breach's own time, like every deadline, so a late worker, a
        # replay and ``process`` give the same expiry
        until = b.start + timedelta(days=b.policy.sanctions.temporary_removal_days)
        detail["until"] = iso(until)
        notice = b.effect(
            EffectKind.REMOVAL_NOTICE,
            member.member_id,
            case_id=case_id,
            clauses=clauses,
            detail=detail,
        )
        timer = b.timer(
            TimerKind.SUSPENSION_EXPIRY,
            tag=member_tag(member.member_id),
            target=member.member_id,
            due=until,
        )
        b.member_step(
            "suspend",
            clauses=clauses,
            effects=[notice],
            detail=detail,
            update={
                "status": MemberStatus.SUSPENDED,
                "removal_case": case_id,
                "removal_kind": basis,
                "suspended_until": iso(until),
                "pending_timer": timer.timer_id,
            },
        )
        return Outcome.SUSPENDED
    notice = b.effect(
        EffectKind.REMOVAL_NOTICE, member.member_id, case_id=case_id, clauses=clauses, detail=detail
    )
    b.member_step(
        "remove",
        clauses=clauses,
        effects=[notice],
        detail=detail,
        update={
            "status": MemberStatus.REMOVED,
            "removal_case": case_id,
            "removal_kind": basis,
            "suspended_until": None,
            "pending_timer": None,
        },
    )
    return Outcome.REMOVED


def sanction_breach(
    b: Builder, *, case_id: str, rules: tuple[str, ...], clauses: tuple[str, ...]
) -> Outcome:
    """Implements S1 and S2: a warning, and removal at the policy's count.

    A member who is already suspended or removed is not in the group to be warned:
    the post is deleted and nothing else changes, so the count stays exact.
    """
    member = b.member
    assert member is not None
    if member.status is not MemberStatus.ACTIVE:
        return Outcome.DELETED
    sanctions = b.policy.sanctions
    warned = (*member.warning_cases, case_id)
    cited = (*clauses, Clause.S1.value)
    if member.temporary_removals and len(warned) > sanctions.warnings_for_removal - 1:
        b.member_step("warn", clauses=cited, update={"warning_cases": warned})
        return remove(
            b,
            kind=sanctions.after_temporary_removal,
            case_id=case_id,
            basis="ladder",
            clauses=(*cited, Clause.S2.value),
        )
    if len(warned) >= sanctions.warnings_for_removal:
        b.member_step("warn", clauses=cited, update={"warning_cases": warned})
        return remove(
            b,
            kind=sanctions.removal,
            case_id=case_id,
            basis="ladder",
            clauses=(*cited, Clause.S2.value),
        )
    notice = b.effect(
        EffectKind.WARNING_NOTICE,
        member.member_id,
        case_id=case_id,
        clauses=cited,
        detail={
            "warnings": str(len(warned)),
            "removal_at": str(sanctions.warnings_for_removal),
            "rules": ",".join(rules),
        },
    )
    b.member_step("warn", clauses=cited, effects=[notice], update={"warning_cases": warned})
    return Outcome.WARNED


def reinstate(b: Builder, *, timer_id: str) -> bool:
    """A temporary removal ends by itself; a stale timer (the member changed since) does nothing."""
    member = b.member
    if member is None or member.pending_timer != timer_id:
        return False
    if member.status is not MemberStatus.SUSPENDED:
        return False
    case_id = member.removal_case or member.chain_id
    notice = b.effect(
        EffectKind.REINSTATEMENT_NOTICE,
        member.member_id,
        case_id=case_id,
        clauses=(Clause.S2.value,),
        detail={"reason": "temporary_removal_ended"},
    )
    b.member_step(
        "reinstate",
        clauses=(Clause.S2.value,),
        effects=[notice],
        update={
            "status": MemberStatus.ACTIVE,
            "suspended_until": None,
            "pending_timer": None,
            "temporary_removals": member.temporary_removals + 1,
        },
    )
    return True


def lift(b: Builder, *, case_id: str) -> bool:
    """An overturned appeal: the warning stops counting; a removal it caused is lifted.

    Cites E1: complaints about the engine's own sanctions are dealt with fairly.
    """
    member = b.member
    if member is None:
        return False
    warned = tuple(c for c in member.warning_cases if c != case_id)
    changed = warned != member.warning_cases
    below = len(warned) < b.policy.sanctions.warnings_for_removal
    removed_by_it = member.removal_case == case_id or (member.removal_kind == "ladder" and below)
    if member.status is not MemberStatus.ACTIVE and removed_by_it:
        notice = b.effect(
            EffectKind.REINSTATEMENT_NOTICE,
            member.member_id,
            case_id=case_id,
            clauses=(Clause.E1.value,),
            detail={"reason": "appeal_overturned"},
            key="appeal",
        )
        b.member_step(
            "overturn",
            clauses=(Clause.E1.value,),
            effects=[notice],
            detail={"case": case_id},
            update={
                "warning_cases": warned,
                "overturned": (*member.overturned, case_id),
                "status": MemberStatus.ACTIVE,
                "removal_case": None,
                "removal_kind": None,
                "suspended_until": None,
                "pending_timer": None,
            },
        )
        return True
    if changed:
        b.member_step(
            "overturn",
            clauses=(Clause.E1.value,),
            detail={"case": case_id},
            update={"warning_cases": warned, "overturned": (*member.overturned, case_id)},
        )
    return changed
