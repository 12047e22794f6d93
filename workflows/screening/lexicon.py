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
    stream_words,
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


_PLAIN_LIMIT = 200_000


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
            # a leading literal space, not a look-behind: the regex engine then jumps
            # from space to space instead of trying every character
            bound = Bound(rule, entry, re.compile(" " + entry.pattern))
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
        # frozen key sets: set.intersection with a dict walks the whole dict
        self.term_keys = frozenset(self.terms)
        self.anchor_keys = frozenset(self.anchored)
        self.variant_keys = frozenset(self.variants)
        self.short_keys = frozenset(self.shorthand)
        self.extra_keys = self.variant_keys | self.short_keys
        # words already seen to be plain letters with no stretch: a cache, never a verdict
        self._plain: set[str] = set()
        self._odd: dict[str, tuple[tuple[str, ...], bool]] = {}

    # -- the fast check ---------------------------------------------------------------

    def might_match(self, text: str) -> bool:
        """Whether the text has, in some spelling, every word some entry needs."""
        words, _ = quick_words(text)
        return self._might_match(words)

    def _might_match(self, words: list[str]) -> bool:
        present = set(words)
        for word in present.difference(self._plain):
            if word.isalpha() and not has_stretch(word):
                if len(self._plain) < _PLAIN_LIMIT:
                    self._plain.add(word)  # seen once, plain letters: no spellings to try
                continue
            forms, masked = self._odd_forms(word)
            present.update(forms)
            if masked and self._unmask(forms[0]):
                return True
        for start, end in spaced_runs(words):
            for first in range(start, end - 2):
                present.update(word_forms("".join(words[first:end]))[0])
        return self._possible(present)

    def needs_close_look(self, text: str) -> bool:
        """False when the text certainly matches nothing (most posts): no word needed,
        or a post of plain words whose phrases all fail or fall inside exceptions."""
        words, _ = quick_words(text)
        if not self._might_match(words):
            return False
        return not (self._plain_words(words) and self._plain_stream_clean(text))

    def plainly_clean(self, text: str) -> bool:
        """For a post of plain words (no leetspeak, stretching or spaced letters that
        read as a listed word): True when nothing matches once exceptions are applied,
        decided on the word stream without building spans. False means "look closely"
        (``hits``)."""
        words, _ = quick_words(text)
        return self._plain_words(words) and self._plain_stream_clean(text)

    def _plain_stream_clean(self, text: str) -> bool:
        stream = stream_words(text)
        present = set(stream)
        for short in present.intersection(self.short_keys):
            present.update(self.shorthand[short])
            stream = [p for w in stream for p in self.shorthand.get(w, (w,))]
        if not present.isdisjoint(self.variant_keys):
            return False  # a doubled letter in a listed word: look closely
        found = []
        if not present.isdisjoint(self.term_keys):
            found = [
                _Hit(b.rule, b.entry.source, i, i, b.entry.weak)
                for i, word in enumerate(stream)
                for b in self.terms.get(word, ())
            ]
        joined = " " + " ".join(stream) + " "
        matching = [
            b
            for a in present.intersection(self.anchor_keys)
            for b in self.anchored[a]
            if self._needs_met(b, present) and b.regex.search(joined)
        ]
        if not found and not matching:
            return True
        packed = _packed(stream)
        found += self._pattern_hits(dict.fromkeys(matching), packed)
        return not self._without_exceptions(found, present, packed)

    def _odd_forms(self, word: str) -> tuple[tuple[str, ...], bool]:
        """Every spelling of a word that is not plain letters (cached: posts repeat words)."""
        cached = self._odd.get(word)
        if cached is None:
            forms, masked = word_forms(word)
            forms = tuple(dict.fromkeys((*forms, *(s for f in forms for s in squeeze_forms(f)))))
            cached = (forms, masked)
            if len(self._odd) < _PLAIN_LIMIT:
                self._odd[word] = cached
        return cached

    def _plain_words(self, words: list[str]) -> bool:
        """No word reads, in another spelling, as a word some entry needs."""
        for start, end in spaced_runs(words):
            for first in range(start, end - 2):
                if not self.triggers.isdisjoint(word_forms("".join(words[first:end]))[0]):
                    return False
        for word in set(words).difference(self._plain):
            forms, masked = self._odd_forms(word)
            forms = tuple(f for f in forms if len(f) > 2)
            plain = word.strip("!")  # what the stream holds for "great!"
            if masked or any(f in self.vocabulary for f in forms if f != plain):
                return False
        return True

    def _possible(self, present: set[str]) -> bool:
        for short in present.intersection(self.short_keys):
            present.update(self.shorthand[short])
        present.update(self.variants[v] for v in present.intersection(self.variant_keys))
        hits = present.intersection(self.triggers)
        if not hits.isdisjoint(self.term_keys):
            return True
        return any(self._needs_met(b, present) for w in hits for b in self.anchored.get(w, ()))

    @staticmethod
    def _needs_met(bound: Bound, present: set[str]) -> bool:
        return all(not present.isdisjoint(slot) for slot in bound.entry.needs)

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

    def spellings(self, word: Word) -> tuple[str, ...]:
        """Every spelling of a word that an entry may need, stretched forms read back."""
        forms = word.forms
        if len(forms) == 1 and forms[0] not in self.extra_keys:
            return forms  # the common case: a plain word
        found: list[str] = []
        for form in forms:
            found.append(form)
            base = self.variants.get(form)
            if base:
                found.append(base)
            found.extend(self.shorthand.get(form, ()))
        return tuple(dict.fromkeys(found))

    def _chosen(self, word: Word, spelled: tuple[str, ...]) -> str:
        for form in spelled:
            if form in self.vocabulary:
                return form
        return word.forms[0]

    def _stream(
        self, words: list[Word], spelled: list[tuple[str, ...]]
    ) -> tuple[str, list[int], list[int]]:
        parts: list[str] = []
        owners: list[int] = []
        for index, word in enumerate(words):
            chosen = self._chosen(word, spelled[index])
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

    def _term_hits(self, words: list[Word], spelled: list[tuple[str, ...]]) -> Iterator[_Hit]:
        for index, forms in enumerate(spelled):
            for form in self.term_keys.intersection(forms):
                for bound in self.terms[form]:
                    yield _Hit(bound.rule, bound.entry.source, index, index, bound.entry.weak)
            if words[index].masked:
                for form in self._unmask(words[index].forms[0]):
                    for bound in self.terms.get(form, ()):
                        yield _Hit(bound.rule, bound.entry.source, index, index, True)

    def _pattern_hits(
        self, bounds: Iterable[Bound], stream: tuple[str, list[int], list[int]]
    ) -> Iterator[_Hit]:
        text, starts, owners = stream
        for bound in bounds:
            for found in bound.regex.finditer(text):
                first = owners[bisect_right(starts, found.start() + 1) - 1]
                last = owners[bisect_right(starts, found.end() - 2) - 1]
                yield _Hit(bound.rule, bound.entry.source, first, last, bound.entry.weak)

    def hits(self, norm: Normalized) -> list[Match]:
        """Every match in the text, exceptions applied, nested repeats dropped."""
        words = split_words(norm.text, self._odd_word_hits)
        if not words:
            return []
        spelled = [self.spellings(w) for w in words]
        present: set[str] = set().union(*spelled)
        anchored = {
            id(b): b
            for a in present.intersection(self.anchor_keys)
            for b in self.anchored[a]
            if self._needs_met(b, present)
        }
        found = list(self._term_hits(words, spelled))
        if not found and not anchored:
            return []
        stream = self._stream(words, spelled)
        found += self._pattern_hits(anchored.values(), stream)
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


def _packed(stream_words: list[str]) -> tuple[str, list[int], list[int]]:
    """A word stream with each word's offset; each word is its own owner."""
    starts, offset = [], 1
    for word in stream_words:
        starts.append(offset)
        offset += len(word) + 1
    return " " + " ".join(stream_words) + " ", starts, list(range(len(stream_words)))


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
    if lexicon.needs_close_look(norm.text):
        matches += lexicon.hits(norm)
    return matches
