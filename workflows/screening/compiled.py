"""A policy's screening, compiled once when the policy loads (``Policy.screener``).

Lexicon files, link lists and the other data files arrive as text in
``Policy.files`` (read by the loader), so compiling is pure and a policy can be
replayed over recorded posts without touching the disk again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...events.errors import PolicyError
from ..ids import RuleId
from ..policy import Policy
from .grammar import Entry, parse_lexicon, words_of
from .lexicon import Lexicon
from .match import Confidence

__all__ = ["LinkRule", "Screener", "compile_policy", "data_lines"]


@dataclass(frozen=True, slots=True)
class LinkRule:
    """What a link to a listed registered domain is: which rule, how sure, which list."""

    rule: RuleId
    confidence: Confidence
    source: str


@dataclass(frozen=True, slots=True)
class Screener:
    lexicon: Lexicon
    domains: dict[str, LinkRule]
    affiliate_params: frozenset[str]
    first_names: frozenset[str]
    postcode_areas: frozenset[str]


def data_lines(text: str) -> list[str]:
    """The entries of a plain list file: one a line, ``#`` comments and blanks skipped."""
    out = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(line)
    return out


def _entries(policy: Policy) -> list[tuple[RuleId, Entry]]:
    entries: list[tuple[RuleId, Entry]] = []
    for rule, config in policy.rules.items():
        if not config.enabled:
            continue
        for ref in config.lexicon:
            entries += [(rule, e) for e in parse_lexicon(policy.files[ref], ref)]
        if config.terms:
            text = "\n".join(config.terms)
            entries += [(rule, e) for e in parse_lexicon(text, f"rules.{rule}.terms")]
    personal = policy.rules.get(RuleId.PERSONAL_INFO)
    names = [" ".join(words_of(n)) for n in policy.personal_info.directory]
    if personal and personal.enabled and names:
        text = "\n".join(n for n in names if n)
        entries += [
            (RuleId.PERSONAL_INFO, e) for e in parse_lexicon(text, "personal_info.directory")
        ]
    return entries


def _shorthand(policy: Policy) -> dict[str, tuple[str, ...]]:
    ref = policy.screening.shorthand
    table: dict[str, tuple[str, ...]] = {}
    for line in data_lines(policy.files.get(ref, "")) if ref else []:
        if "=" not in line:
            raise PolicyError(f"{ref}: expected 'short = long', got a line without '='")
        short, long = (part.strip() for part in line.split("=", 1))
        table[short.casefold()] = tuple(words_of(long))
    return table


def _domains(policy: Policy) -> dict[str, LinkRule]:
    links = policy.links
    table: dict[str, LinkRule] = {}
    for name, category in links.categories.items():
        rule = LinkRule(category.rule, Confidence(category.confidence), f"links.{name}")
        listed = [*category.domains]
        for ref in category.files:
            listed += data_lines(policy.files[ref])
        for domain in listed:
            table[domain.casefold()] = rule
    for domain in links.review:
        table[domain.casefold()] = LinkRule(RuleId.BAD_LINK, Confidence.WEAK, "links.review")
    for domain in links.blocklist:
        table[domain.casefold()] = LinkRule(RuleId.BAD_LINK, Confidence.CLEAR, "links.blocklist")
    return table


def _words_file(policy: Policy, ref: str) -> frozenset[str]:
    return (
        frozenset(line.casefold() for line in data_lines(policy.files.get(ref, "")))
        if ref
        else frozenset()
    )


def compile_policy(policy: Policy) -> Screener:
    """Parse every lexicon and list the policy names; errors name the file and line."""
    enabled = {r for r, c in policy.rules.items() if c.enabled}
    raw = [(r, re.compile(p)) for r, c in policy.rules.items() if r in enabled for p in c.phrases]
    lexicon = Lexicon(
        _entries(policy),
        {rule: policy.clauses_for(rule) for rule in policy.rules},
        _shorthand(policy),
        raw,
    )
    return Screener(
        lexicon=lexicon,
        domains=_domains(policy),
        affiliate_params=frozenset(p.casefold() for p in policy.links.affiliate_params),
        first_names=_words_file(policy, policy.personal_info.first_names),
        postcode_areas=_words_file(policy, policy.personal_info.postcode_areas),
    )
