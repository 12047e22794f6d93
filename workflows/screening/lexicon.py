"""Word and phrase rules (C1 sexual, C2 profanity, C3 hate, C4 violence, S3 threat,
C6 harassment, C7 spam, E4 names) from the lexicon files the policy names.

Whole words, never substrings, so "Scunthorpe", "assess", "classic", "cocktail"
and "therapist" never match. Two passes: a set lookup of every spelling of every
word against the words any entry needs (most posts stop there), then, for a post
that has one, the entries anchored on it run over the post's word stream, and the
rule's exceptions (figures of speech) drop what they cover.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from ..ids import Clause, RuleId
from .grammar import Entry
from .match import Confidence, Match
from .normalize import Normalized
from .tokens import (
    Word,
    has_stretch,
    quick_words,
    spaced_runs,
    split_words,
    squeeze_forms,
    word_forms,
)

__all__ = ["Bound", "Lexicon", "screen_lexicon"]


@dataclass(frozen=True, slots=True)
class Bound:
    """An entry bound to its rule, with its pattern compiled over the word stream."""

    rule: RuleId
    entry: Entry
    regex: re.Pattern[str]


@dataclass(frozen=True, slots=True)
class _Hit:
    rule: RuleId
    source: str
    first: int
    last: int
    weak: bool


def _variants(word: str) -> Iterator[str]:
    """The word with one letter doubled ("fuuck"), a common way to slip past a list."""
    for index in range(len(word)):
        yield word[: index + 1] + word[index:]


class Lexicon:
    """Every lexicon entry of a policy, indexed by the words that can start a check."""

    def __init__(
        self,
        entries: Iterable[tuple[RuleId, Entry]],
        clauses: Mapping[RuleId, tuple[Clause, ...]],
        shorthand: Mapping[str, tuple[str, ...]],
        raw: Iterable[tuple[RuleId, re.Pattern[str]]] = (),
    ) -> None:
        self.clauses = dict(clauses)
        self.shorthand = dict(shorthand)
        self.raw = list(raw)
        self.terms: dict[str, list[Bound]] = {}
        self.anchored: dict[str, list[Bound]] = {}
        self.exceptions: dict[RuleId, list[Bound]] = {}
        words: set[str] = set()
        for rule, entry in entries:
            bound = Bound(rule, entry, re.compile("(?<= )" + entry.pattern))
            words |= entry.words
            if entry.exception:
                self.exceptions.setdefault(rule, []).append(bound)
            elif entry.single:
                for word in entry.single:
                    self.terms.setdefault(word, []).append(bound)
            else:
                for word in entry.anchors:
                    self.anchored.setdefault(word, []).append(bound)
        self.vocabulary = frozenset(words)
        keys = set(self.terms) | set(self.anchored)
        self.variants = {v: w for w in keys for v in _variants(w) if v not in words}
        self.masks: dict[tuple[str, int], list[str]] = {}
        for word in self.terms:
            self.masks.setdefault((word[0], len(word)), []).append(word)
        self.triggers = frozenset(keys | set(self.variants))

    # -- the fast check ---------------------------------------------------------------

    def might_match(self, text: str) -> bool:
        """Whether any spelling of any word of the text is one an entry needs."""
        words, separated = quick_words(text)
        present = set(words)
        if not present.isdisjoint(self.triggers):
            return True
        for short in present.intersection(self.shorthand):
            if not self.triggers.isdisjoint(self.shorthand[short]):
                return True
        for word in words:
            if not word.isalpha() and self._odd_word_hits(word):
                return True
        if has_stretch(separated) and any(
            not self.triggers.isdisjoint(squeeze_forms(w)) for w in words
        ):
            return True
        for start, end in spaced_runs(words):
            if self._odd_word_hits("".join(words[start:end])):
                return True
        return False

    def _odd_word_hits(self, raw: str) -> bool:
        forms, masked = word_forms(raw)
        if not self.triggers.isdisjoint(forms):
            return True
        forms = tuple(s for f in forms for s in squeeze_forms(f))
        if not self.triggers.isdisjoint(forms):
            return True
        return masked and bool(self._unmask(forms[0]))

    def _unmask(self, core: str) -> list[str]:
        return [
            word
            for word in self.masks.get((core[0], len(core)), ())
            if all(c in ("*", w) for c, w in zip(core, word, strict=False))
        ]

    # -- the full check ---------------------------------------------------------------

    def spellings(self, word: Word) -> list[str]:
        """Every spelling of a word that an entry may need, stretched forms read back."""
        found: list[str] = []
        for form in word.forms:
            found.append(form)
            base = self.variants.get(form)
            if base:
                found.append(base)
            found.extend(self.shorthand.get(form, ()))
        return found

    def _chosen(self, word: Word) -> str:
        for form in self.spellings(word):
            if form in self.vocabulary:
                return form
        return word.forms[0]

    def _stream(self, words: list[Word]) -> tuple[str, list[int], list[int]]:
        parts: list[str] = []
        owners: list[int] = []
        for index, word in enumerate(words):
            chosen = self._chosen(word)
            for part in self.shorthand.get(chosen, (chosen,)):
                parts.append(part)
                owners.append(index)
            if word.stop:
                parts.append(".")
                owners.append(index)
        starts: list[int] = []
        offset = 1
        for part in parts:
            starts.append(offset)
            offset += len(part) + 1
        return " " + " ".join(parts) + " ", starts, owners

    def _term_hits(self, words: list[Word]) -> Iterator[_Hit]:
        for index, word in enumerate(words):
            for form in dict.fromkeys(self.spellings(word)):
                for bound in self.terms.get(form, ()):
                    yield _Hit(bound.rule, bound.entry.source, index, index, bound.entry.weak)
            if word.masked:
                for form in self._unmask(word.forms[0]):
                    for bound in self.terms.get(form, ()):
                        yield _Hit(bound.rule, bound.entry.source, index, index, True)

    def _pattern_hits(
        self, bounds: Iterable[Bound], stream: tuple[str, list[int], list[int]]
    ) -> Iterator[_Hit]:
        text, starts, owners = stream
        for bound in bounds:
            for found in bound.regex.finditer(text):
                first = owners[bisect_right(starts, found.start()) - 1]
                last = owners[bisect_right(starts, found.end() - 2) - 1]
                yield _Hit(bound.rule, bound.entry.source, first, last, bound.entry.weak)

    def hits(self, norm: Normalized) -> list[Match]:
        """Every match in the text, exceptions applied, nested repeats dropped."""
        words = split_words(norm.text, self._odd_word_hits)
        if not words:
            return []
        present = {s for w in words for s in self.spellings(w)}
        stream = self._stream(words)
        anchored = {id(b): b for a in present.intersection(self.anchored) for b in self.anchored[a]}
        found = [*self._term_hits(words), *self._pattern_hits(anchored.values(), stream)]
        found = self._without_exceptions(found, present, stream)
        return [self._match(norm, words, hit) for hit in _outermost(found)]

    def _without_exceptions(
        self, found: list[_Hit], present: set[str], stream: tuple[str, list[int], list[int]]
    ) -> list[_Hit]:
        for rule in {h.rule for h in found}:
            bounds = [
                b for b in self.exceptions.get(rule, ()) if not present.isdisjoint(b.entry.anchors)
            ]
            covers = [(h.first, h.last) for h in self._pattern_hits(bounds, stream)]
            found = [
                h for h in found
                if h.rule is not rule or not any(a <= h.first and h.last <= b for a, b in covers)
            ]  # fmt: skip
        return found

    def _match(self, norm: Normalized, words: list[Word], hit: _Hit) -> Match:
        span = norm.span(words[hit.first].start, words[hit.last].end)
        confidence = Confidence.WEAK if hit.weak else Confidence.CLEAR
        return Match(hit.rule, self.clauses[hit.rule], span, confidence, entry=hit.source)

    def raw_hits(self, norm: Normalized) -> list[Match]:
        """The policy's own regular expressions (``phrases``), over the normalised text."""
        return [
            Match(rule, self.clauses[rule], norm.span(m.start(), m.end()), entry=f"rules.{rule}")
            for rule, pattern in self.raw
            for m in pattern.finditer(norm.text)
        ]


def _outermost(found: list[_Hit]) -> list[_Hit]:
    """One hit per place and rule: a clear hit beats a weak one, a longer one a nested one."""
    kept: list[_Hit] = []
    for hit in sorted(found, key=lambda h: (h.weak, h.first, -h.last, h.source)):
        if not any(
            k.rule is hit.rule and k.first <= hit.first and hit.last <= k.last for k in kept
        ):
            kept.append(hit)
    return sorted(kept, key=lambda h: (h.first, h.last, h.rule.value))


def screen_lexicon(norm: Normalized, lexicon: Lexicon) -> list[Match]:
    """Every term and phrase match in the normalised text."""
    matches = lexicon.raw_hits(norm) if lexicon.raw else []
    if lexicon.might_match(norm.text):
        matches += lexicon.hits(norm)
    return matches
