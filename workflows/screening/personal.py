"""E4 personal information: emails, phone numbers, postcodes, home addresses.

Phone numbers count when libphonenumber calls them possible, not only when they
are in an allocated range (the policy's default); the charity's own published
contacts on the policy's allowlist do not count.
"""

from __future__ import annotations

import re

import phonenumbers

from ..ids import RuleId
from ..policy import Policy
from .match import Match

__all__ = ["screen_personal_info"]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b", re.IGNORECASE)
_ADDRESS = re.compile(
    r"\b\d{1,4}[a-z]?\s+(?:[A-Z][a-z]+\s){1,3}(?:Road|Rd|Street|St|Avenue|Ave|Lane|Ln|Close|Drive|"
    r"Dr|Way|Crescent|Grove|Gardens|Place|Terrace|Court)\b",
)
_DIGITS = re.compile(r"\D")


def _allowed(value: str, policy: Policy) -> bool:
    canon = _DIGITS.sub("", value) if not _EMAIL.fullmatch(value) else value.lower()
    for item in policy.personal_info.allowlist:
        if "@" in item and item.lower() == canon:
            return True
        if "@" not in item and _DIGITS.sub("", item) == canon:
            return True
    return False


def _phones(text: str, policy: Policy) -> list[tuple[int, int]]:
    if sum(c.isdigit() for c in text) < 7:
        return []
    matcher = phonenumbers.PhoneNumberMatcher(
        text, policy.personal_info.default_region, leniency=phonenumbers.Leniency.POSSIBLE
    )
    return [(m.start, m.end) for m in matcher if not _allowed(m.raw_string, policy)]


def screen_personal_info(text: str, policy: Policy) -> list[Match]:
    clauses = policy.clauses_for(RuleId.PERSONAL_INFO)
    spans = [(m.start(), m.end()) for m in _EMAIL.finditer(text) if not _allowed(m.group(), policy)]
    spans += _phones(text, policy)
    spans += [(m.start(), m.end()) for m in _POSTCODE.finditer(text)]
    spans += [(m.start(), m.end()) for m in _ADDRESS.finditer(text)]
    return [Match(RuleId.PERSONAL_INFO, clauses, span) for span in sorted(set(spans))]
