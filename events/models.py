"""One frozen pydantic model per CloudEvents ``type`` the engine accepts.

Every model forbids unknown fields: a producer that sends a field we do not know
has a bug we want to hear about, not a field we silently drop.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "EVENT_MODELS",
    "AllegationCategory",
    "AllegationReported",
    "AppealLodged",
    "CaseReviewed",
    "ComplaintReceived",
    "ConsentRecorded",
    "ConsentWithdrawn",
    "EventData",
    "Guardian",
    "GuardianRegistered",
    "Media",
    "MemberRemovalRequested",
    "PostSubmitted",
    "ReviewDecision",
    "SubjectRole",
]

Ref = str


class AllegationCategory(StrEnum):
    """Categories named by E1 (cyberbullying, grooming, abuse, illegal use, filtering breach)."""

    CYBERBULLYING = "cyberbullying"
    GROOMING = "grooming"
    ABUSE = "abuse"
    ILLEGAL_USE = "illegal_use"
    FILTERING_BREACH = "filtering_breach"
    OTHER = "other"


class SubjectRole(StrEnum):
    STAFF = "staff"
    VOLUNTEER = "volunteer"
    MEMBER = "member"
    CHILD = "child"
    UNKNOWN = "unknown"


class ReviewDecision(StrEnum):
    ACKNOWLEDGE = "acknowledge"
    UPHOLD = "uphold"
    DISMISS = "dismiss"
    REFER_EXTERNAL = "refer_external"
    NOTIFY_PARENTS = "notify_parents"
    WITHHOLD_PARENT_NOTIFICATION = "withhold_parent_notification"
    OVERTURN = "overturn"
    CLOSE = "close"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


class Media(_Data):
    media_id: str = Field(min_length=1)
    depicts_children: tuple[str, ...] = ()


class PostSubmitted(_Data):
    """``esafety.post.submitted``: a post or comment in the group (code of conduct C1..C7)."""

    post_id: str = Field(min_length=1)
    member_id: str = Field(min_length=1)
    text: str
    links: tuple[str, ...] = ()
    media: tuple[Media, ...] = ()


class ComplaintReceived(_Data):
    """``esafety.complaint.received``: a complaint or concern, answered quickly (S5)."""

    complaint_id: str = Field(min_length=1)
    complainant_ref: Ref = Field(min_length=1)
    text: str
    about_post_id: str | None = None
    about_member_id: str | None = None
    channel: str | None = None


class AllegationReported(_Data):
    """``esafety.allegation.reported``: a safeguarding allegation (E1)."""

    allegation_id: str = Field(min_length=1)
    reporter_ref: Ref = Field(min_length=1)
    category: AllegationCategory
    subject_role: SubjectRole
    subject_ref: Ref | None = None
    children: tuple[str, ...] = ()
    text: str = ""


class CaseReviewed(_Data):
    """``esafety.case.reviewed``: a person's decision on a case."""

    case_id: str = Field(min_length=1)
    reviewer_ref: Ref = Field(min_length=1)
    decision: ReviewDecision
    note: str = ""


class ConsentRecorded(_Data):
    """``esafety.consent.recorded``: written permission for a child's images (E3)."""

    child_id: str = Field(min_length=1)
    purposes: tuple[str, ...] = Field(min_length=1)
    evidence_ref: Ref | None = None


class ConsentWithdrawn(_Data):
    """``esafety.consent.withdrawn``: permission withdrawn, respected from this moment (E3)."""

    child_id: str = Field(min_length=1)
    purposes: tuple[str, ...] = Field(min_length=1)
    evidence_ref: Ref | None = None


class Guardian(_Data):
    guardian_ref: Ref = Field(min_length=1)
    contact: str = ""


class GuardianRegistered(_Data):
    """``esafety.guardian.registered``: who to tell about a child (E2)."""

    child_id: str = Field(min_length=1)
    guardians: tuple[Guardian, ...] = Field(min_length=1)


class MemberRemovalRequested(_Data):
    """``esafety.member.removal_requested``: a member asks to leave (S4)."""

    member_id: str = Field(min_length=1)


class AppealLodged(_Data):
    """``esafety.appeal.lodged``: a member appeals a warning or a removal."""

    appeal_id: str = Field(min_length=1)
    member_id: str = Field(min_length=1)
    case_id: str = Field(min_length=1)
    text: str = ""


EventData = (
    PostSubmitted
    | ComplaintReceived
    | AllegationReported
    | CaseReviewed
    | ConsentRecorded
    | ConsentWithdrawn
    | GuardianRegistered
    | MemberRemovalRequested
    | AppealLodged
)

EVENT_MODELS: dict[str, type[_Data]] = {
    "esafety.post.submitted": PostSubmitted,
    "esafety.complaint.received": ComplaintReceived,
    "esafety.allegation.reported": AllegationReported,
    "esafety.case.reviewed": CaseReviewed,
    "esafety.consent.recorded": ConsentRecorded,
    "esafety.consent.withdrawn": ConsentWithdrawn,
    "esafety.guardian.registered": GuardianRegistered,
    "esafety.member.removal_requested": MemberRemovalRequested,
    "esafety.appeal.lodged": AppealLodged,
}

EventType = Literal[
    "esafety.post.submitted",
    "esafety.complaint.received",
    "esafety.allegation.reported",
    "esafety.case.reviewed",
    "esafety.consent.recorded",
    "esafety.consent.withdrawn",
    "esafety.guardian.registered",
    "esafety.member.removal_requested",
    "esafety.appeal.lodged",
]
