"""The policy as versioned data: loaded from TOML, checked, compiled once.

Why data and not code: the charity reviews its policy every year (E6) and must be
able to change a threshold or a word list without a release; and every decision
records ``version`` so an old decision can be traced to the rules that made it.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..events.errors import PolicyError
from .ids import Clause, RuleId

if TYPE_CHECKING:
    from .screening.compiled import Screener

__all__ = [
    "DEFAULT_POLICY_PATH",
    "Consent",
    "Deadlines",
    "Delivery",
    "Escalation",
    "LinkCategory",
    "Links",
    "PersonalInfo",
    "Policy",
    "Retention",
    "RulePolicy",
    "Sanctions",
    "Screening",
    "Spam",
    "default_policy",
    "load_policy",
    "parse_policy",
]

DEFAULT_POLICY_PATH = "data/default_policy.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sanctions(_Strict):
    warnings_for_removal: int = Field(2, ge=1)
    removal: Literal["temporary", "permanent"] = "temporary"
    temporary_removal_days: float = Field(30, gt=0)
    after_temporary_removal: Literal["temporary", "permanent"] = "permanent"
    threat: Literal["temporary", "permanent"] = "permanent"
    warn_on_child_image: bool = False


class Escalation(_Strict):
    chain: tuple[str, ...] = Field(("dsl", "deputy-dsl", "chair-of-trustees"), min_length=1)
    review_ref: str = "dsl"


class Deadlines(_Strict):
    allegation_default_hours: float = Field(24, gt=0)
    complaint_response_hours: float = Field(48, gt=0)
    allegation_hours: dict[str, float] = {}


class Consent(_Strict):
    group_post_purpose: str = "facebook_group"


class PersonalInfo(_Strict):
    allowlist: tuple[str, ...] = ()
    default_region: str = "GB"
    # E4: full names of staff, volunteers and service users that must not be published
    directory: tuple[str, ...] = ()
    # data files (first names that make "<Name> goes to <School>" a named child; postcode areas)
    first_names: str = ""
    postcode_areas: str = ""


class LinkCategory(_Strict):
    """A list of registered domains (inline or in data files) and what a link to one is."""

    rule: RuleId = RuleId.BAD_LINK
    confidence: Literal["clear", "weak"] = "clear"
    domains: tuple[str, ...] = ()
    files: tuple[str, ...] = ()


class Links(_Strict):
    blocklist: tuple[str, ...] = ()
    review: tuple[str, ...] = ()
    categories: dict[str, LinkCategory] = {}
    # C7: query parameters that make a link an affiliate or referral link
    affiliate_params: tuple[str, ...] = ()


class Spam(_Strict):
    """C7: the same text posted again and again by one member in a short window."""

    repeat_count: int = Field(3, ge=2)
    repeat_window_minutes: float = Field(1440, gt=0)
    repeat_min_chars: int = Field(20, ge=1)
    recent_limit: int = Field(20, ge=1)


class Screening(_Strict):
    """Data files shared by every text rule (text-speak expansions)."""

    shorthand: str = ""


class Retention(_Strict):
    """How long evidence (post, complaint, allegation and appeal text, review notes) is kept.

    E4: evidence lives apart from the audit and is removed ``days[kind]`` days after its
    case closes; an open case keeps its evidence. ``hold_days[kind]``: how long after
    closing a member's erasure request must wait (an appeal or a complaint about the case
    may still come); a kind that is not listed falls back to ``default_days`` / 0.
    """

    days: dict[str, float] = {}
    hold_days: dict[str, float] = {}
    default_days: float = Field(365, ge=0)
    #: the raw bytes of quarantined input (kept for a replay after a fix) are removed this
    #: many days after they were quarantined; the entry (reason, hash, size) stays
    quarantine_days: float = Field(90, ge=0)

    def keep_for(self, kind: str) -> timedelta:
        return timedelta(days=self.days.get(kind, self.default_days))

    def hold_for(self, kind: str) -> timedelta:
        return timedelta(days=self.hold_days.get(kind, 0))

    def quarantine_for(self) -> timedelta:
        return timedelta(days=self.quarantine_days)


class Delivery(_Strict):
    """How hard a notice is tried before a person must look (issue 5).

    A notice that cannot be delivered (the mail server down, a bad address) is tried
    again with backoff ``retries`` times after the first attempt, then goes to the
    dead-letter queue with the reason (``esafety dlq list``), where an operator can
    replay it. ``None``: the workers' own setting (``ESAFETY_MAX_RETRIES``).
    """

    retries: int | None = Field(None, ge=0, le=100)


class RulePolicy(_Strict):
    """One rule: the clause it enforces and the words and patterns that find it."""

    clause: Clause
    also: tuple[Clause, ...] = ()
    terms: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    # lexicon files (workflows/screening/grammar.py), relative to the policy file or the package
    lexicon: tuple[str, ...] = ()
    enabled: bool = True


class Policy(_Strict):
    """A loaded policy; patterns are compiled on first use and kept."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    version: str = Field(min_length=1)
    title: str = ""
    sanctions: Sanctions = Sanctions()
    escalation: Escalation = Escalation()
    deadlines: Deadlines = Deadlines()
    external: dict[str, str] = {"default": "local-authority"}
    consent: Consent = Consent()
    personal_info: PersonalInfo = PersonalInfo()
    links: Links = Links()
    retention: Retention = Retention()
    delivery: Delivery = Delivery()
    spam: Spam = Spam()
    screening: Screening = Screening()
    rules: dict[RuleId, RulePolicy]
    waived: dict[Clause, str] = {}
    # contents of the data files named above (lexicons, link lists), filled by the loader
    files: dict[str, str] = {}

    @cached_property
    def stamp(self) -> str:
        """The policy version every decision records: ``version+digest``.

        The declared ``version`` alone cannot trace a decision to its rules: a charity
        may extend a word list (a data file beside the policy) and forget to bump it.
        The digest covers everything that decides (rules, thresholds, deadlines and the
        contents of every data file), so two decisions that cite the same stamp were
        made by the same rules, and ``esafety policy check FILE`` prints the stamp of a
        file to compare with the audit.
        """
        body = self.model_dump_json(exclude={"version", "title"})
        return f"{self.version}+{hashlib.sha256(body.encode('utf-8')).hexdigest()[:12]}"

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Policy:
        """A copy whose compiled parts (screener, stamp) are computed again, not inherited."""
        copy = super().model_copy(update=update, deep=deep)
        for name in ("screener", "compiled", "stamp"):
            copy.__dict__.pop(name, None)
        return copy

    @cached_property
    def screener(self) -> Screener:
        """The compiled screening (lexicons, link lists), built once per policy."""
        from .screening.compiled import compile_policy

        return compile_policy(self)

    def clauses_for(self, rule: RuleId) -> tuple[Clause, ...]:
        """The clause a rule enforces first, then the clauses it also cites."""
        entry = self.rules[rule]
        return (entry.clause, *entry.also)

    def allegation_deadline(self, category: str) -> timedelta:
        hours = self.deadlines.allegation_hours.get(
            category, self.deadlines.allegation_default_hours
        )
        return timedelta(hours=hours)

    def external_body(self, category: str | None) -> str:
        return self.external.get(category or "default", self.external.get("default", "police"))

    @cached_property
    def compiled(self) -> dict[RuleId, tuple[frozenset[str], re.Pattern[str] | None]]:
        """Each rule's term set and one alternation of its phrases, compiled once."""
        out: dict[RuleId, tuple[frozenset[str], re.Pattern[str] | None]] = {}
        for rule, entry in self.rules.items():
            if not entry.enabled:
                continue
            pattern = None
            if entry.phrases:
                pattern = re.compile("|".join(f"(?:{p})" for p in entry.phrases))
            out[rule] = (frozenset(t.casefold() for t in entry.terms), pattern)
        return out


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            return number
    return None


def _check_patterns(policy: Policy, text: str) -> None:
    for rule, entry in policy.rules.items():
        for phrase in entry.phrases:
            try:
                re.compile(phrase)
            except re.error as exc:
                raise PolicyError(
                    f"rules.{rule}: a phrase is not a valid regular expression ({exc.msg})",
                    line=_line_of(text, f"[rules.{rule}]"),
                ) from None


def _data_refs(policy: Policy) -> list[str]:
    refs = [ref for entry in policy.rules.values() for ref in entry.lexicon]
    refs += [ref for category in policy.links.categories.values() for ref in category.files]
    refs += [policy.screening.shorthand, policy.personal_info.first_names]
    refs.append(policy.personal_info.postcode_areas)
    return [ref for ref in dict.fromkeys(refs) if ref]


def _attach_files(policy: Policy, base: Path | None) -> Policy:
    """Read the data files the policy names: beside the policy file first, then the package's."""
    files: dict[str, str] = {}
    for ref in _data_refs(policy):
        places = [base / ref] if base else []
        places.append(Path(__file__).parent / "data" / ref)
        found = next((p for p in places if p.is_file()), None)
        if found is None:
            raise PolicyError(f"data file {ref!r} not found beside the policy or in the package")
        files[ref] = found.read_text("utf-8")
    return policy.model_copy(update={"files": files})


def parse_policy(text: str, base: str | Path | None = None) -> Policy:
    """Parse and check policy TOML; errors name the line (or the data file and its line).

    Data files named by the policy are read relative to ``base`` (the policy file's
    folder) first, then from the package's ``data/`` folder.
    """
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise PolicyError(f"not valid TOML: {exc}", line=int(match[1]) if match else None) from None
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        error = exc.errors(include_input=False, include_url=False)[0]
        loc = [str(part) for part in error["loc"]]
        needle = f"[{'.'.join(loc[:2])}]" if loc and loc[0] == "rules" else loc[-1] if loc else ""
        raise PolicyError(
            f"{'.'.join(loc)}: {error['msg']}", line=_line_of(text, needle) if needle else None
        ) from None
    _check_patterns(policy, text)
    policy = _attach_files(policy, Path(base) if base is not None else None)
    _ = policy.screener  # lexicon errors surface at load, naming file and line
    return policy


def load_policy(path: str | Path | None = None) -> Policy:
    """Load a policy file, or the default shipped with the package."""
    if path is None:
        text = (Path(__file__).parent / DEFAULT_POLICY_PATH).read_text("utf-8")
        return parse_policy(text)
    return parse_policy(Path(path).read_text("utf-8"), base=Path(path).parent)


_DEFAULT: list[Policy] = []


def default_policy() -> Policy:
    """The shipped policy, loaded once per process."""
    if not _DEFAULT:
        _DEFAULT.append(load_policy())
    return _DEFAULT[0]
