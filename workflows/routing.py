"""Which aggregates an event touches, derived from the event alone.

Case ids come from the event, so a redelivered or republished event lands on
the same case; the hash tag says which keys commit together.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..events.envelope import Event
from ..events.models import (
    AllegationReported,
    AppealLodged,
    CaseReviewed,
    ComplaintReceived,
    ConsentRecorded,
    ConsentWithdrawn,
    GuardianRegistered,
    MemberRemovalRequested,
    PostSubmitted,
)
from .model import member_tag

__all__ = ["Route", "route"]


@dataclass(frozen=True, slots=True)
class Route:
    """``tag`` is None when it must be looked up (a review names only its case)."""

    case_id: str | None
    tag: str | None
    member_id: str | None = None
    linked_case: str | None = None
    children: tuple[str, ...] = ()
    register_child: str | None = None


def route(event: Event) -> Route:
    data = event.data
    if isinstance(data, PostSubmitted):
        children = (
            tuple(dict.fromkeys(c for m in data.media for c in m.depicts_children))
            if data.media
            else ()
        )
        return Route(
            f"post:{data.post_id}", member_tag(data.member_id), data.member_id, children=children
        )
    if isinstance(data, ComplaintReceived):
        case_id = f"complaint:{data.complaint_id}"
        linked = f"post:{data.about_post_id}" if data.about_post_id else None
        return Route(case_id, case_id, linked_case=linked)
    if isinstance(data, AllegationReported):
        case_id = f"allegation:{data.allegation_id}"
        return Route(case_id, case_id, children=data.children)
    if isinstance(data, AppealLodged):
        case_id = f"appeal:{data.appeal_id}"
        return Route(case_id, case_id, linked_case=data.case_id)
    if isinstance(data, CaseReviewed):
        return Route(data.case_id, None)
    if isinstance(data, MemberRemovalRequested):
        return Route(f"member:{data.member_id}", member_tag(data.member_id), data.member_id)
    if isinstance(data, ConsentRecorded | ConsentWithdrawn | GuardianRegistered):
        return Route(None, f"c:{data.child_id}", register_child=data.child_id)
    raise TypeError(f"no route for event type {event.type!r}")
