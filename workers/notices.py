"""The words of each notice: one template per effect kind (and variant), citing the clause.

Why templates fill only from the effect: an effect holds refs, ids, clause ids and a
few plain values (a date, a count, the recipient's own child's reference), never post
text, names or contacts. A notice built from nothing else cannot tell a parent about
another child or quote what someone wrote, whatever a template says.

Templates are ``workers/templates/<kind>.txt`` or ``<kind>.<variant>.txt`` (the variant
is the effect's ``removal``, ``result`` or ``reason``), ``string.Template`` text whose
first line is ``Subject: ...``. An operator may point ``templates_dir`` at a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from string import Template

from ..workflows.model import Effect

__all__ = ["CLAUSE_WORDS", "MISSING", "TEMPLATES_DIR", "Notice", "render", "template_for"]

MISSING = "(not recorded)"

TEMPLATES_DIR = Path(__file__).parent / "templates"

CLAUSE_WORDS: dict[str, str] = {
    "C1": "posts must not contain or promote pornography or obscenity",
    "C2": "posts must not contain or promote vulgarity or profanity",
    "C3": "posts must not contain or promote hatred, bigotry or racism",
    "C4": "posts must not contain or promote gratuitous violence",
    "C5": "posts must not link to sites that break this code",
    "C6": "posts must not threaten, stalk, defame, degrade, victimise or intimidate anyone",
    "C7": "posts must not be junk mail, spam, chain letters or advertising",
    "S1": "a post that breaks the code is deleted and its author receives a written warning",
    "S2": "two warnings bring removal from the group",
    "S3": "any threat, or intended threat, of violence brings immediate removal",
    "S4": "a member may ask to be removed at any time",
    "S5": "complaints and concerns are answered as quickly as possible",
    "E1": "inappropriate use, complaints and allegations are dealt with firmly, fairly "
    "and decisively",
    "E2": "parents and carers are told of incidents of concern, as appropriate",
    "E3": "images of children are used only with written permission, and only for the "
    "purpose it was given for",
    "E4": "personal information of staff, volunteers and service users is not published",
    "E5": "logins and information systems are kept secure",
    "E6": "procedures and this policy are reviewed regularly",
    "E7": "the welfare of the child is paramount",
}

_REASONS = {
    "review": "screening was not sure about a post; a person must decide",
    "threat": "a post threatened violence; the member was removed at once",
    "appeal": "a member has appealed a warning or a removal",
    "complaint": "a complaint needs an answer",
    "deadline_passed": "nobody acknowledged the alert by its deadline",
    "temporary_removal_ended": "Your temporary removal from the group has ended.",
    "appeal_overturned": "We have looked again and your appeal has been upheld.",
}


@dataclass(frozen=True, slots=True)
class Notice:
    subject: str
    body: str


def _when(value: str) -> str:
    """An RFC 3339 UTC time as a parent would read it: 24 November 2026, 11:00 UTC."""
    try:
        moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return value
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def _reason(detail: dict[str, str]) -> str:
    reason = detail.get("reason", "")
    if reason.startswith("allegation:"):
        return f"a safeguarding allegation ({reason.split(':', 1)[1].replace('_', ' ')})"
    return _REASONS.get(reason, reason.replace("_", " ") or "a case needs a decision")


def _clauses(effect: Effect) -> str:
    cited = [c for c in dict.fromkeys(effect.clauses) if c in CLAUSE_WORDS]
    return "\n".join(f"  {c}: {CLAUSE_WORDS[c]}." for c in cited) or "  (no clause cited)"


def template_for(effect: Effect, templates_dir: Path = TEMPLATES_DIR) -> Path:
    """The variant's template if there is one, else the kind's."""
    detail = effect.detail
    variant = detail.get("removal") or detail.get("result") or detail.get("reason") or ""
    specific = templates_dir / f"{effect.kind.value}.{variant}.txt"
    return specific if variant and specific.is_file() else templates_dir / f"{effect.kind}.txt"


def _values(effect: Effect) -> dict[str, str]:
    detail = effect.detail
    due = detail.get("due", "")
    values = {key: _when(value) for key, value in detail.items()}
    values.update(
        case_id=effect.case_id,
        recipient=effect.recipient,
        clauses=_clauses(effect),
        reason_text=_reason(detail),
        due_text=f"Please acknowledge by {_when(due)}." if due else "",
        category_text=detail.get("category", "").replace("_", " ") or "not given",
    )
    return values


class _Values(dict[str, str]):
    """A value an older effect did not record reads as such instead of failing delivery."""

    def __missing__(self, key: str) -> str:
        return MISSING


def render(effect: Effect, templates_dir: Path = TEMPLATES_DIR) -> Notice:
    """The subject and body of the notice for ``effect``."""
    text = template_for(effect, templates_dir).read_text("utf-8")
    filled = Template(text).substitute(_Values(_values(effect)))
    head, _, body = filled.partition("\n\n")
    subject = head.removeprefix("Subject:").strip()
    return Notice(subject=subject, body=body.strip() + "\n")
