"""Word and phrase rules (C1 sexual, C2 profanity, C3 hate, C4 violence, S3 threat,
C6 harassment, C7 spam): whole-word terms and phrase patterns from the policy file.

Whole words, not substrings, so "Scunthorpe", "assess" and "classic" never match.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..ids import RuleId
from ..policy import Policy
from .match import Match
from .normalize import Normalized, deleet

__all__ = ["screen_lexicon"]

_TOKEN = re.compile(r"[\w@$!+|]+")
_RUNS = re.compile(r"(.)\1{2,}")
_RUNS2 = re.compile(r"(.)\1+")


def _candidates(token: str) -> set[str]:
    forms = {token}
    if not token.isalpha():
        forms.add(deleet(token))
    for form in list(forms):
        forms.add(_RUNS.sub(r"\1\1", form))
        forms.add(_RUNS2.sub(r"\1", form))
    return forms


def _term_hits(norm: Normalized, policy: Policy) -> Iterator[Match]:
    terms = [(rule, words) for rule, (words, _) in policy.compiled.items() if words]
    if not terms:
        return
    for token in _TOKEN.finditer(norm.text):
        forms = _candidates(token.group().strip("!+|$@") or token.group())
        for rule, words in terms:
            if not forms.isdisjoint(words):
                yield Match(rule, policy.clauses_for(rule), norm.span(token.start(), token.end()))


def _phrase_hits(norm: Normalized, policy: Policy) -> Iterator[Match]:
    for rule, (_, pattern) in policy.compiled.items():
        if pattern is None:
            continue
        for found in pattern.finditer(norm.text):
            yield Match(rule, policy.clauses_for(rule), norm.span(found.start(), found.end()))


def screen_lexicon(norm: Normalized, policy: Policy) -> list[Match]:
    """Every term and phrase match in the normalised text."""
    lexical = {RuleId.BAD_LINK, RuleId.PERSONAL_INFO, RuleId.CHILD_IMAGE_NO_CONSENT}
    return [
        m for m in (*_term_hits(norm, policy), *_phrase_hits(norm, policy)) if m.rule not in lexical
    ]
