"""The one exception tree of esafety.

Every error carries the ids it is about, and its message says what happened and
what to do next. Messages never hold post text, names or contact details: only
event ids, field paths, case ids and states.

    EsafetyError
    ├── InvalidEvent            bad input: permanent, the event goes to quarantine
    │   └── LimitExceeded       a configured size or length limit was passed
    ├── ForgedEvent             a signature is missing or wrong where one is required
    ├── DecisionRefused         a review decision the case's state does not allow
    ├── CaseNotFound            a review or appeal names a case that does not exist (yet)
    ├── ConflictError           a version check failed: transient, retried
    ├── PolicyError             a policy file that cannot be loaded or checked
    └── AuditBroken             a hash chain or signed head does not verify
"""

from __future__ import annotations

__all__ = [
    "AuditBroken",
    "CaseNotFound",
    "ConflictError",
    "DecisionRefused",
    "EsafetyError",
    "ForgedEvent",
    "InvalidEvent",
    "LimitExceeded",
    "PolicyError",
]


class EsafetyError(Exception):
    """Root of every error the engine raises on purpose."""


class InvalidEvent(EsafetyError):
    """An event that can never be processed, whatever the retries: it is quarantined."""

    def __init__(self, message: str, *, event_id: str | None = None, field: str | None = None):
        self.event_id = event_id
        self.field = field
        where = f"event {event_id!r}: " if event_id else ""
        super().__init__(f"{where}{message}")


class LimitExceeded(InvalidEvent):
    """A payload, text or list over a configured limit (names the limit)."""


class ForgedEvent(InvalidEvent):
    """Signing is required and the envelope's signature is missing or does not verify."""


class DecisionRefused(EsafetyError):
    """A review decision that the case's current state does not allow."""

    def __init__(self, case_id: str, state: str, decision: str, allowed: list[str]):
        self.case_id = case_id
        self.state = state
        self.decision = decision
        self.allowed = allowed
        allowed_text = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"case {case_id!r} is {state!r}: decision {decision!r} is not allowed "
            f"(allowed here: {allowed_text})"
        )


class CaseNotFound(EsafetyError):
    """A review or appeal about a case that does not exist yet: retried, then quarantined."""

    def __init__(self, case_id: str):
        self.case_id = case_id
        super().__init__(f"case {case_id!r} does not exist (yet); check the case id")


class ConflictError(EsafetyError):
    """An aggregate changed between read and commit: the step is retried from a fresh read."""

    def __init__(self, key: str):
        self.key = key
        super().__init__(f"version conflict on {key!r}; retrying from a fresh read")


class PolicyError(EsafetyError):
    """A policy file that does not parse or does not cite the policy's clauses."""

    def __init__(self, message: str, *, line: int | None = None):
        self.line = line
        where = f"line {line}: " if line else ""
        super().__init__(f"{where}{message}")


class AuditBroken(EsafetyError):
    """An audit chain or signed head does not verify."""
