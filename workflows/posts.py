"""Post cases: screening and the sanctions of S1, S2, S3 and E3.

When several rules match, the safest outcome wins (E7): a threat outranks a
warning, and a child's image is taken down and the guardians told whatever else
the post did.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..events.envelope import Event
from ..events.models import PostSubmitted
from .audit import text_hash
from .ids import CaseKind, Clause, EffectKind, Outcome, RuleId
from .ladder import remove, sanction_breach
from .model import Case, Member, member_tag
from .registers import Registers
from .screening import (
    Confidence,
    Match,
    children_without_consent,
    post_digest,
    recent_digests,
    remember_post,
    screen,
    screen_images,
)
from .steps import Builder, iso

__all__ = ["close", "open_post", "sanction_post"]


def _cites(matches: list[Match]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    rules = tuple(sorted({m.rule.value for m in matches}))
    clauses = tuple(sorted({c.value for m in matches for c in m.clauses}))
    return rules, clauses


def _guardian_notices(b: Builder, children: list[str], registers: Registers) -> None:
    """E2/E3: each child's guardians are told at once; a notice names only their child."""
    assert b.case is not None
    notices = [
        b.effect(
            EffectKind.GUARDIAN_NOTICE,
            guardian,
            case_id=b.case.case_id,
            clauses=(Clause.E3.value, Clause.E2.value),
            detail={"child_id": child, "reason": "image_without_consent"},
            key=child,
        )
        for child in children
        for guardian in registers.guardians_of(child)
    ]
    b.move(
        "notify_parents",
        rules=(RuleId.CHILD_IMAGE_NO_CONSENT.value,),
        clauses=(Clause.E3.value, Clause.E2.value),
        effects=notices,
        detail={
            "children": len(children),
            "guardians_without_record": sum(1 for c in children if not registers.guardians_of(c)),
        },
    )


def _threat(b: Builder, source: str, rules: tuple[str, ...], clauses: tuple[str, ...]) -> None:
    """S3: removal at once, the post deleted, the safeguarding lead alerted."""
    assert b.case is not None and b.member is not None
    case_id = b.case.case_id
    cited = (*clauses, Clause.S3.value)
    delete = b.effect(EffectKind.DELETE_POST, source, case_id=case_id, clauses=cited)
    outcome = remove(
        b, kind=b.policy.sanctions.threat, case_id=case_id, basis="threat", clauses=cited
    )
    alert = b.effect(
        EffectKind.DSL_ALERT,
        b.policy.escalation.chain[0],
        case_id=case_id,
        clauses=cited,
        detail={"reason": "threat"},
    )
    b.move(
        "escalate",
        rules=rules,
        clauses=cited,
        effects=[delete, alert],
        detail={"member_outcome": outcome.value},
        update={"outcome": outcome},
    )


def sanction_post(
    b: Builder,
    source: str,
    rules: tuple[str, ...],
    clauses: tuple[str, ...],
    *,
    trigger: str = "warn",
) -> None:
    """S1/S2: delete the post, warn the author or remove them at the policy's count."""
    assert b.case is not None
    case_id = b.case.case_id
    delete = b.effect(EffectKind.DELETE_POST, source, case_id=case_id, clauses=clauses)
    outcome = sanction_breach(b, case_id=case_id, rules=rules, clauses=clauses)
    b.move(
        trigger,
        rules=rules,
        clauses=(*clauses, Clause.S1.value),
        effects=[delete],
        detail={"member_outcome": outcome.value},
        update={"outcome": outcome, "rules": rules, "clauses": clauses},
    )


def _child_image_only(b: Builder, source: str) -> None:
    assert b.case is not None
    delete = b.effect(
        EffectKind.DELETE_POST, source, case_id=b.case.case_id, clauses=(Clause.E3.value,)
    )
    b.move(
        "warn",
        rules=(RuleId.CHILD_IMAGE_NO_CONSENT.value,),
        clauses=(Clause.E3.value,),
        effects=[delete],
        detail={"member_outcome": "no_sanction"},
        update={"outcome": Outcome.DELETED},
    )


def _review(b: Builder, rules: tuple[str, ...], clauses: tuple[str, ...]) -> None:
    """A weak match: a person decides, the member is not warned on a guess (fairness, E1)."""
    assert b.case is not None
    alert = b.effect(
        EffectKind.DSL_ALERT,
        b.policy.escalation.review_ref,
        case_id=b.case.case_id,
        clauses=clauses,
        detail={"reason": "review"},
    )
    b.move(
        "escalate",
        rules=rules,
        clauses=clauses,
        effects=[alert],
        update={"outcome": Outcome.REVIEW},
    )


def _remember(b: Builder, member: Member, text: str, at: str) -> None:
    """C7: keep this post's digest on the member so the next post can count repeats."""
    remembered = remember_post(member.recent_posts, post_digest(text, b.policy), at, b.policy)
    if remembered != member.recent_posts:
        b.member = member.model_copy(update={"recent_posts": remembered})


def close(b: Builder, default: Outcome) -> None:
    """Close the case with its outcome (``default`` when nothing was decided)."""
    assert b.case is not None
    outcome = b.case.outcome if b.case.outcome is not Outcome.OPEN else default
    b.move("close", detail={"outcome": outcome.value}, update={"outcome": outcome})


def open_post(
    b: Builder,
    event: Event,
    data: PostSubmitted,
    registers: Registers,
    member: Member,
    *,
    text_matches: Sequence[Match] | None = None,
) -> None:
    """Screen a new post and act on it (the post case and its author share one hash tag)."""
    b.member = member
    digest = text_hash(data.text)
    b.case = Case(
        case_id=f"post:{data.post_id}",
        kind=CaseKind.POST,
        tag=member_tag(data.member_id),
        member_id=data.member_id,
        opened_at=iso(event.time),
        source=event.source,
        event_id=event.id,
        text_sha256=digest,
    )
    if text_matches is None:
        recent = recent_digests(member.recent_posts, event.time, b.policy)
        matches = screen(
            data.text, b.policy, registers, links=data.links, media=data.media, recent=recent
        )
        _remember(b, member, data.text, iso(event.time))
    else:  # a replay's recorded screening (the text may be erased); images read the registers
        matches = [*text_matches, *screen_images(data.media, registers, b.policy)]
    rules, clauses = _cites(matches)
    found = tuple(m.as_dict() for m in matches)
    b.move(
        "screen",
        rules=rules,
        clauses=clauses,
        detail={"matches": list(found), "registers": registers.versions(), "text_sha256": digest},
        update={"rules": rules, "clauses": clauses, "matches": found},
    )
    clear = [m for m in matches if m.confidence is Confidence.CLEAR]
    breach = [m for m in clear if m.rule is not RuleId.CHILD_IMAGE_NO_CONSENT]
    missing = children_without_consent(data.media, registers, b.policy.consent.group_post_purpose)
    held = False
    if any(m.rule is RuleId.THREAT for m in clear):
        _threat(b, event.source, *_cites(breach))
        held = True
    elif breach or (missing and b.policy.sanctions.warn_on_child_image):
        sanction_post(b, event.source, *_cites(breach or clear))
    elif missing:
        _child_image_only(b, event.source)
    elif matches:
        _review(b, rules, clauses)
        held = True
    if missing:
        _guardian_notices(b, missing, registers)
    if not held:
        close(b, Outcome.NO_ACTION)
