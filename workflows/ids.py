"""The stable vocabulary: rule, clause, state, effect, outcome and status ids.

These strings appear in decisions, audit entries and reports, and tools read
them; renaming one is a breaking change.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "CaseKind",
    "Clause",
    "EffectKind",
    "MemberStatus",
    "Outcome",
    "RuleId",
    "State",
    "TimerKind",
]


class RuleId(StrEnum):
    SEXUAL = "sexual"
    PROFANITY = "profanity"
    HATE = "hate"
    VIOLENCE = "violence"
    THREAT = "threat"
    HARASSMENT = "harassment"
    SPAM = "spam"
    BAD_LINK = "bad_link"
    PERSONAL_INFO = "personal_info"
    CHILD_IMAGE_NO_CONSENT = "child_image_no_consent"


class Clause(StrEnum):
    C1 = "C1"
    C2 = "C2"
    C3 = "C3"
    C4 = "C4"
    C5 = "C5"
    C6 = "C6"
    C7 = "C7"
    S1 = "S1"
    S2 = "S2"
    S3 = "S3"
    S4 = "S4"
    S5 = "S5"
    E1 = "E1"
    E2 = "E2"
    E3 = "E3"
    E4 = "E4"
    E5 = "E5"
    E6 = "E6"
    E7 = "E7"


class State(StrEnum):
    RECEIVED = "received"
    SCREENING = "screening"
    WARNING = "warning"
    ESCALATION = "escalation"
    PARENT_NOTIFICATION = "parent_notification"
    CLOSED = "closed"


class CaseKind(StrEnum):
    POST = "post"
    COMPLAINT = "complaint"
    ALLEGATION = "allegation"
    APPEAL = "appeal"
    MEMBER = "member"


class Outcome(StrEnum):
    NO_ACTION = "no_action"
    DELETED = "deleted"
    WARNED = "warned"
    SUSPENDED = "suspended"
    REMOVED = "removed"
    REVIEW = "review"
    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"
    OVERTURNED = "overturned"
    CLOSED = "closed"
    LEFT = "left"


class MemberStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REMOVED = "removed"


class EffectKind(StrEnum):
    DELETE_POST = "delete_post"
    WARNING_NOTICE = "warning_notice"
    REMOVAL_NOTICE = "removal_notice"
    REINSTATEMENT_NOTICE = "reinstatement_notice"
    DSL_ALERT = "dsl_alert"
    GUARDIAN_NOTICE = "guardian_notice"
    COMPLAINANT_ACK = "complainant_ack"
    RESPONSE_REMINDER = "response_reminder"
    EXTERNAL_REFERRAL = "external_referral"
    APPEAL_OUTCOME_NOTICE = "appeal_outcome_notice"


class TimerKind(StrEnum):
    ALERT_DEADLINE = "alert_deadline"
    COMPLAINT_RESPONSE = "complaint_response"
    SUSPENSION_EXPIRY = "suspension_expiry"
