"""Word and phrase rules (C1 sexual, C2 profanity, C3 hate, C4 violence, S3 threat,
C6 harassment, C7 spam, E4 names) from the lexicon files the policy names.

Whole words, never substrings, so "Scunthorpe", "assess", "classic", "cocktail"
and "therapist" never match. Two passes: a set lookup of every spelling of every
word against the words any entry needs (most posts stop there), then, for a post
that has one, the entries anchored on it run over the post's word stream, and the
rule's exceptions (figures of speech) drop what they cover.

Speed (issue 4 asks for 20,000 posts a second on one core): the first pass decides a
post of plain words on its stream alone, comparing hits and exceptions as character
spans; an entry is tried only where a word it can start with stands (``_spans``);
each word's spellings and reading are cached, never a post's verdict. Every shortcut
gives the answer the word-by-word reading (``_word_hits``) gives.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import compress, count
from typing import NamedTuple

import re2

from ..ids import Clause, RuleId
from .grammar import Entry
from .match import Confidence, Match
from .normalize import TOKEN_TABLE, Normalized, ascii_table, ascii_translate
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


@dataclass(frozen=True, slots=True, eq=False)
class Bound:
    """An entry bound to its rule, with its pattern compiled over the word stream."""

    rule: RuleId
    entry: Entry
    regex: re.Pattern[str]
    # the entry's needs less the slot its anchors come from (met when an anchor is seen)
    rest: tuple[frozenset[str], ...] = ()
    # each word a match can start with, as the stream spells it (" word ")
    keys: Mapping[str, str] | None = None


class _Hit(NamedTuple):  # a tuple: many are made, and a dataclass is slower to build
    rule: RuleId
    source: str
    first: int
    last: int
    weak: bool


_PLAIN_LIMIT = 200_000
_READING_LIMIT = 50_000  # readings are kept only for words of posts that match something
_Words = set[str] | frozenset[str]
_Index = dict[str, tuple[tuple[tuple[frozenset[str], ...], "Bound"], ...]]
_NO_INDEX: tuple[frozenset[str], _Index] = (frozenset(), {})


@dataclass(frozen=True, slots=True)
class _Reading:
    """A word of a post without spaced letters, as ``_word_hits`` reads it."""

    part: str  # its words in the stream (" ." after them when it ends with "!")
    spelled: tuple[str, ...]  # every spelling an entry may need (``spellings``)
    extra: tuple[str, ...]  # words of ``part`` that are not spellings (shorthand of a base)
    terms: tuple[tuple[RuleId, str, bool], ...]  # rule, entry, weak of each term hit
    run: bool  # a letter three times in a row: a post with one reads it stretched
    empty: bool  # shorthand that reads as no words


# TOKEN_TABLE with the sentence ends other than "!" as "." (which it keeps in words)
_STOP_TABLE = {i: 46 if chr(i) in ".?\n" else v for i, v in TOKEN_TABLE.items()}
_STOP_BYTES = ascii_table(_STOP_TABLE)
# three one-letter words in a row in a joined stream ("." marks among them): spaced
# letters among the quick words are at least that
_LETTER_RUN = re.compile(r" [^ ] [^ ] [^ ] ")
# a "!" run before a character a word keeps: there the quick words are not the stream's
# ("!!*", not "!+": a pattern that starts with a plain character is scanned for it)
_GLUED_BANG = re.compile("!!*[a-z0-9@$|+*\u0080-\U0010ffff]")


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
            rest = tuple(slot for slot in entry.needs if slot != entry.anchors)
            first_keys = None if entry.firsts is None else {w: f" {w} " for w in entry.firsts}
            bound = Bound(rule, entry, re.compile(" " + entry.pattern), rest, first_keys)
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
        self._any_keys = self.extra_keys | self.term_keys | self.anchor_keys
        # words already seen to be plain letters with no stretch: a cache, never a verdict
        self._plain: set[str] = set()
        self._odd: dict[str, tuple[tuple[str, ...], bool]] = {}
        # words seen to pass the plain-post check ("." too: the stream's sentence mark)
        self._passed: set[str] = {"."}
        # "!"s alone read as "i"s: they pass unless the vocabulary has "iii" or longer
        self._bangs_pass = not any(re.fullmatch("i{3,}", word) for word in self.vocabulary)
        # passed words no entry needs in any spelling (``_plainly_clean`` sets them aside)
        self._idle: set[str] = {"."}
        # each term's rules, once
        self._term_rules = {w: tuple({b.rule: 0 for b in bs}) for w, bs in self.terms.items()}
        # each anchor's entries with the slots still to check, and the same per rule for
        # exceptions: loops that read no attributes
        self._anchor_index = {
            word: tuple((b.rest, b) for b in bounds) for word, bounds in self.anchored.items()
        }
        self._exception_index: dict[RuleId, tuple[frozenset[str], _Index]] = {}
        for rule, bounds in self.exceptions.items():
            by_word: dict[str, list[tuple[tuple[frozenset[str], ...], Bound]]] = {}
            for bound in bounds:
                for word in bound.entry.anchors:
                    by_word.setdefault(word, []).append((bound.rest, bound))
            index = {word: tuple(pairs) for word, pairs in by_word.items()}
            self._exception_index[rule] = (frozenset(index), index)
        # how each word of a post without spaced letters reads (``_plain_hits``)
        self._readings: dict[str, _Reading] = {}
        self._stretched: dict[str, _Reading] = {}
        self._parts: dict[str, str] = {".": "."}
        self._odd_raws: set[str] = set()  # read as more or other than themselves
        self._term_raws: set[str] = set()
        self._run_raws: set[str] = set()
        self._empty_raws: set[str] = set()
        # every entry's pattern in one RE2 set: the entries that match a stream, at once
        # (terms and anchored ones first, then exceptions, then ``_LETTER_RUN``, then
        # one that matches always)
        hit_bounds = [b for group in self.terms.values() for b in group]
        hit_bounds += [b for group in self.anchored.values() for b in group]
        self._set_bounds = list(dict.fromkeys(hit_bounds))
        self._set_terms = len({id(b) for group in self.terms.values() for b in group})
        self._set_hits = len(self._set_bounds)
        self._set_bounds += [b for group in self.exceptions.values() for b in group]
        self._set_rules = [b.rule for b in self._set_bounds]
        self._set_run = len(self._set_bounds)
        self._set_sentinel = self._set_run + 1
        patterns = [b.regex.pattern for b in self._set_bounds] + [_LETTER_RUN.pattern]
        self._set = _pattern_set(patterns)
        # shorthand as one string per word, for expanding a whole stream in C
        self._expansions = {short: " ".join(long) for short, long in self.shorthand.items()}

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
        stream = stream_words(text)
        return self._close_look(text, stream, frozenset(stream))

    def _close_look(self, text: str, stream: list[str], words: _Words) -> bool:
        """``needs_close_look`` given the text's ``stream_words`` and their set."""
        return self._look(text, stream, words)[0]

    def _look(self, text: str, stream: list[str], words: _Words) -> tuple[bool, list[int] | None]:
        """``_close_look``, and the pattern set's answer for the joined stream when the
        plain-post check asked it (``_matching``; for ``_hits``).

        The plain-post check runs first: it decides most posts, and only a post it
        cannot clear pays for ``_might_match`` (the same answer either way, since a
        post is passed over when it might not match or when it is plainly clean).

        When the plain-post check saw a match no exception covers (None) in a post
        without a "!", ``_might_match`` would say True: the quick words are then the
        stream's, so they hold every word the matching entry needs.
        """
        clean, matched = self._plain_verdict(text, stream, words)
        if clean:
            return False, matched
        if clean is None and "!" not in text:
            return True, matched
        return self._might_match(quick_words(text)[0]), matched

    def plainly_clean(self, text: str) -> bool:
        """For a post of plain words (no leetspeak, stretching or spaced letters that
        read as a listed word): True when nothing matches once exceptions are applied,
        decided on the word stream without building spans. False means "look closely"
        (``hits``)."""
        stream = stream_words(text)
        return bool(self._plainly_clean(text, stream, frozenset(stream)))

    def _plainly_clean(self, text: str, stream: list[str], words: _Words) -> bool | None:
        """The plain-word check on the post's quick words, then the stream check
        (``_stream_clean``: None, not clean, when it saw a match no exception covers).
        See ``_plain_verdict``."""
        return self._plain_verdict(text, stream, words)[0]

    def _plain_verdict(
        self, text: str, stream: list[str], words: _Words
    ) -> tuple[bool | None, list[int] | None]:
        """``_plainly_clean``, and the pattern set's answer for the joined stream when
        it was asked.

        The quick words are the stream's words less its "." marks (the two tables
        differ only on ".!?" and line breaks) but where a "!" stands in a word. A word
        ending in "!"s reads as the word without them (so long as a "|", "+" or "*"
        is not last before them), and "!"s alone pass unless the vocabulary has "iii"
        (``_bangs_pass``): only then, or with a "!" before a character a word keeps,
        are the quick words themselves needed. Three one-letter quick words in a row
        are three one-letter words in a row in the stream, so a scan of it rules
        spaced letters out.
        """
        # most words of a post are idle (no entry needs them and they pass): one lookup
        # each sets them aside, and the checks below read only the rest
        active = words.difference(self._idle)
        quick = None
        if "!" in text and (
            not self._bangs_pass
            or _GLUED_BANG.search(text) is not None
            or "|!" in text
            or "+!" in text
            or "*!" in text
        ):
            quick = quick_words(text)[0]
            if not self._words_pass(set(quick).difference(self._idle)):
                return False, None
        elif not self._words_pass(active):
            return False, None
        joined = " " + " ".join(stream) + " "
        matched = self._matching(joined)
        if _LETTER_RUN.search(joined) is not None if matched is None else self._set_run in matched:
            if quick is None:
                quick = quick_words(text)[0] if "!" in text else [w for w in stream if w != "."]
            if not self._no_spaced_trigger(quick):
                return False, matched
        return self._stream_clean(stream, words, active, joined, matched), matched

    def _stream_clean(
        self,
        stream: list[str],
        words: _Words,
        active: _Words,
        joined: str,
        matched: list[int] | None = None,
    ) -> bool | None:
        """Nothing matches the stream once exceptions are applied (True); False when
        that is not so or not sure, None when a match no exception covers was seen.

        Hits and exception matches are compared as character spans of the joined
        stream, which orders them as the word indices do (every match starts with the
        space before a word and ends with the space after one). ``present`` decides
        which entries are tried, as it always has; ``tokens``, every word the stream
        holds, where a pattern is tried (the two differ only after shorthand).

        Without shorthand or a doubled letter in a listed word (most posts), the words
        of the stream are ``present``, so the entries that match it (RE2's set, when it
        can say) are among those the slot checks let through, and the only ones that
        add a span: they alone are tried. ``matched``: the set's answer for ``joined``,
        when already asked.
        """
        if active.isdisjoint(self.extra_keys):
            if matched is None:
                matched = self._matching(joined)
            if matched is not None:
                return self._covered(matched, joined, words)
        present = tokens = words
        keyed = active.intersection(self._any_keys)  # idle words are no keys; then small sets
        if not keyed:
            return True
        shorts = keyed.intersection(self.short_keys)
        if shorts:
            # text-speak read as its words, the stream expanded once per shorthand word
            # seen (so "imma" reads "i m going to" only when another is seen too)
            expand = self._expansions.get
            present = set(words)
            for short in shorts:
                present.update(self.shorthand[short])
                stream = " ".join(map(expand, stream, stream)).split()
            joined = " " + " ".join(stream) + " "
            tokens = present.union(stream)
            keyed = present.intersection(self._any_keys)
        if not keyed.isdisjoint(self.variant_keys):
            return False  # a doubled letter in a listed word: look closely
        terms = keyed.intersection(self.term_keys)
        anchors = keyed.intersection(self.anchor_keys)
        if not terms and not anchors:
            return True
        found: list[tuple[RuleId, int, int]] = []
        term_rules = self._term_rules
        for word in tokens.intersection(self.term_keys) if terms else ():
            key = " " + word + " "
            rules = term_rules[word]
            at = joined.find(key)
            while at != -1:
                found += [(rule, at, at + len(key)) for rule in rules]
                at = joined.find(key, at + 1)
        candidates: dict[Bound, None] = {}
        index = self._anchor_index
        for anchor in anchors:
            for rest, bound in index[anchor]:
                for slot in rest:
                    if present.isdisjoint(slot):
                        break
                else:
                    candidates[bound] = None
        for bound in candidates:
            found += [(bound.rule, *span) for span in _spans(bound, joined, tokens)]
        if not found:
            return True
        for rule in {hit[0] for hit in found}:
            covers = [
                span
                for b in self._exceptions_met(rule, present, tokens)
                for span in _spans(b, joined, tokens)
            ]
            for hit_rule, start, end in found:
                if hit_rule is rule and not any(a <= start and end <= b for a, b in covers):
                    return False
        return True

    def _matching(self, stream: str) -> list[int] | None:
        """Which entries (``_set_bounds``, by index, in order; then ``_set_run`` for
        ``_LETTER_RUN``, and the pattern that matches every text) match somewhere in
        ``stream``: one pass of RE2's set matcher, which runs every pattern at once as
        one automaton; None when it cannot say (no set, text it cannot read, the
        automaton out of memory)."""
        if self._set is None:
            return None
        try:
            matched = self._set.match(stream.encode("utf-8"))
        except UnicodeEncodeError:  # a lone surrogate
            return None
        if not matched:
            return None  # not even the pattern that matches every text: an error
        matched.sort()  # in no particular order
        return matched if matched[-1] == self._set_sentinel else None

    def _covered(self, matched: list[int], stream: str, tokens: _Words) -> bool | None:
        """``_stream_clean`` given the entries that match the stream somewhere (the set
        the slot checks narrow down to: those that find nothing add no span): True, or
        None for a match no exception covers."""
        bounds = self._set_bounds
        split = bisect_right(matched, self._set_hits - 1)
        if not split:
            return True  # no entry matches
        rules = self._set_rules
        excepting = matched[split : bisect_right(matched, len(bounds) - 1, split)]
        excepted = {rules[i] for i in excepting}
        covers: dict[RuleId, list[tuple[int, int]]] = {}
        for i in matched[:split]:
            rule = rules[i]
            if rule not in excepted:
                return None  # a match of a rule none of whose exceptions matches
            spans = covers.get(rule)
            if spans is None:  # the rule's exception spans, once
                spans = covers[rule] = [
                    span
                    for j in excepting
                    if rules[j] is rule
                    for span in _spans(bounds[j], stream, tokens)
                ]
            for start, end in _spans(bounds[i], stream, tokens):
                if not any(a <= start and end <= b for a, b in spans):
                    return None
        return True

    def _exceptions_met(self, rule: RuleId, present: _Words, tokens: _Words) -> list[Bound]:
        """The rule's exceptions with an anchor in ``present`` (which ones are tried), less
        those a slot of which no word of the stream (``tokens``) fills: such a one would
        find nothing, so leaving it out changes no cover."""
        keys, index = self._exception_index.get(rule, _NO_INDEX)
        met: dict[Bound, None] = {}
        for anchor in present.intersection(keys):
            for rest, bound in index[anchor]:
                for slot in rest:
                    if tokens.isdisjoint(slot):
                        break
                else:
                    met[bound] = None
        return list(met)

    def _words_pass(self, words: _Words) -> bool:
        """No word reads, in another spelling, as a word some entry needs (cached per word)."""
        passed = self._passed
        if passed.issuperset(words):
            return True
        for word in words.difference(passed):
            forms, masked = self._odd_forms(word)
            forms = tuple(f for f in forms if len(f) > 2)
            plain = word.strip("!")  # what the stream holds for "great!"
            if masked or any(f in self.vocabulary for f in forms if f != plain):
                return False
            if len(passed) < _PLAIN_LIMIT:
                passed.add(word)
                if word not in self._any_keys:
                    self._idle.add(word)
        return True

    def _no_spaced_trigger(self, words: list[str]) -> bool:
        for start, end in spaced_runs(words):
            for first in range(start, end - 2):
                if not self.triggers.isdisjoint(word_forms("".join(words[first:end]))[0]):
                    return False
        return True

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

    def _possible(self, present: set[str]) -> bool:
        for short in present.intersection(self.short_keys):
            present.update(self.shorthand[short])
        present.update(self.variants[v] for v in present.intersection(self.variant_keys))
        hits = present.intersection(self.triggers)
        if not hits.isdisjoint(self.term_keys):
            return True
        return any(_rest_met(b, present) for w in hits for b in self.anchored.get(w, ()))

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
        self,
        bounds: Iterable[Bound],
        stream: tuple[str, list[int], list[int]],
        tokens: _Words,
    ) -> Iterator[_Hit]:
        text, starts, owners = stream
        for bound in bounds:
            for start, end in _spans(bound, text, tokens):
                first = owners[bisect_right(starts, start + 1) - 1]
                last = owners[bisect_right(starts, end - 2) - 1]
                yield _Hit(bound.rule, bound.entry.source, first, last, bound.entry.weak)

    def hits(self, norm: Normalized) -> list[Match]:
        """Every match in the text, exceptions applied, nested repeats dropped."""
        return self._hits(norm, None)

    def _hits(self, norm: Normalized, matched: list[int] | None) -> list[Match]:
        """``hits``, given the pattern set's answer for the joined ``norm.stream``
        (``_look``), or None. A post without a "!" reads its stream's words, so the
        answer says whether they hold spaced letters, and for a post of plain words
        which entries match (``_plain_hits``)."""
        text = norm.text
        if "!" in text:
            matched = None
        # the words of ``split_words`` with "." where a sentence mark other than "!"
        # stands (without a "!", the stream's words are just that)
        if "!" not in text:
            marked = norm.stream
        else:
            marked = ascii_translate(text, _STOP_BYTES).replace(".", " . ").split()
        raws = list(filter(".".__ne__, marked))
        if not raws:
            return []
        # spaced letters among the words are one-letter words in a row among the marked
        # ones too ("." marks among them): a scan rules most posts out at once
        if matched is not None:
            spaced = self._set_run in matched
        else:
            spaced = _LETTER_RUN.search(" " + " ".join(marked) + " ") is not None
        if not spaced or not spaced_runs(raws):
            found = self._plain_hits(norm, marked, raws, matched)
            if found is not None:
                return found
        return self._word_hits(norm)

    def _plain_hits(
        self,
        norm: Normalized,
        marked: list[str],
        raws: list[str],
        matched: list[int] | None = None,
    ) -> list[Match] | None:
        """``_word_hits`` for a post with no spaced letters, from each word's cached
        reading instead of word by word; None when it cannot be.

        Without spaced letters each word reads the same wherever it stands
        (``_Reading``; in a post with stretched letters, words with a letter three times
        in a row read their own way). The stream joins the words' readings with "\x01"
        (spaces within a reading), so the word a character of it belongs to is the count
        of "\x01" before it.
        """
        raw_set = set(raws)
        readings = self._readings
        missing = raw_set.difference(readings)
        if missing:
            if len(readings) + len(missing) > _READING_LIMIT:
                return None  # the cache is full: read word by word
            for raw in missing:
                self._remember(raw)
        if not raw_set.isdisjoint(self._empty_raws):
            return None  # a shorthand read as no words: read word by word
        odd = raw_set.intersection(self._odd_raws)
        terms = raw_set.intersection(self._term_raws)
        local: dict[str, _Reading] = {}
        if not raw_set.isdisjoint(self._run_raws):  # stretched letters in the post
            local = {raw: self._stretched_reading(raw) for raw in raw_set & self._run_raws}
            odd.update(local)
            terms.difference_update(local)
            terms.update(raw for raw, reading in local.items() if reading.terms)
        if odd:
            present = raw_set.difference(odd)  # the union of the words' spellings
            tokens = set(present)  # and every word of the stream
            for raw in odd:
                reading = local.get(raw) or readings[raw]
                present.update(reading.spelled)
                tokens.update(reading.spelled, reading.extra)
            matched = None
        else:  # every word reads as itself
            present = tokens = raw_set
        bounds = self._set_bounds
        anchored: dict[Bound, None] = {}
        if matched is not None:
            # the stream holds the words of ``present`` only, as the joined stream the
            # set read does (less some "." marks, which no pattern crosses): the entries
            # that match are those, and among those the slot checks let through
            low, high = self._set_terms, self._set_hits
            anchored = {bounds[i]: None for i in matched if low <= i < high}
        else:
            index = self._anchor_index
            for anchor in present.intersection(self.anchor_keys):
                for rest, bound in index[anchor]:
                    for slot in rest:
                        if present.isdisjoint(slot):
                            break
                    else:
                        anchored[bound] = None
        found = [
            _Hit(rule, source, at, at, weak)
            for at in compress(count(), map(terms.__contains__, raws))
            for rule, source, weak in (local.get(raws[at]) or readings[raws[at]]).terms
        ] if terms else []  # fmt: skip
        if not found and not anchored:
            return []
        # a word that reads as itself is its own part (a "!" at its end would make it odd)
        seq = list(map(self._parts.__getitem__, marked)) if odd else marked
        if local:
            seq = [
                local[t].part if t in local else part for t, part in zip(marked, seq, strict=True)
            ]
        joined = _joined(seq)
        if joined is None or joined.count("\x01") != len(raws) - 1:
            return None
        stream = " " + joined.replace("\x01", " ") + " "
        found += self._owned_hits(anchored, stream, joined, tokens)
        for rule in {h.rule for h in found}:
            if matched is None:
                exceptions = self._exceptions_met(rule, present, tokens)
            else:
                rules = self._set_rules
                exceptions = [
                    bounds[i]
                    for i in matched[
                        bisect_right(matched, self._set_hits - 1) : bisect_right(
                            matched, len(bounds) - 1
                        )
                    ]
                    if rules[i] is rule
                ]
            covers = [
                (h.first, h.last) for h in self._owned_hits(exceptions, stream, joined, tokens)
            ]
            found = [
                h for h in found
                if h.rule is not rule or not any(a <= h.first and h.last <= b for a, b in covers)
            ]  # fmt: skip
        kept = _outermost(found)
        if not kept:
            return []
        text = norm.text
        starts: list[int] = []
        at = 0
        for raw in raws[: max(h.last for h in kept) + 1]:
            at = text.find(raw, at)  # tokens are separated by characters no token has
            starts.append(at)
            at += len(raw)
        return [
            Match(
                h.rule,
                self.clauses[h.rule],
                norm.span(starts[h.first], starts[h.last] + len(raws[h.last])),
                Confidence.WEAK if h.weak else Confidence.CLEAR,
                entry=h.source,
            )
            for h in kept
        ]

    def _owned_hits(
        self, bounds: Iterable[Bound], stream: str, joined: str, tokens: _Words
    ) -> Iterator[_Hit]:
        """Pattern hits over ``stream``, as word indices of ``joined`` (see ``_plain_hits``)."""
        for bound in bounds:
            for start, end in _spans(bound, stream, tokens):
                first = joined.count("\x01", 0, start)
                last = joined.count("\x01", 0, end - 2)
                yield _Hit(bound.rule, bound.entry.source, first, last, bound.entry.weak)

    def _reading(self, raw: str, stretched: bool) -> _Reading:
        """How a word reads (``split_words``, ``spellings``, ``_chosen``, ``_stream``)."""
        forms, masked = ((raw,), False) if raw.isalpha() else word_forms(raw)
        run = has_stretch(raw)
        if stretched and run:
            forms = tuple(dict.fromkeys((*forms, *squeeze_forms(forms[0]))))
        word = Word(forms, 0, len(raw), masked)
        spelled = self.spellings(word)
        chosen = self._chosen(word, spelled)
        words = self.shorthand.get(chosen, (chosen,))
        part = " ".join(words) + (" ." if raw[-1] == "!" else "")  # a "!" ends a sentence
        extra = tuple(w for w in words if w not in spelled)
        terms = tuple((h.rule, h.source, h.weak) for h in self._term_hits([word], [spelled]))
        return _Reading(part, spelled, extra, terms, run, not words)

    def _stretched_reading(self, raw: str) -> _Reading:
        """A word's reading in a post with stretched letters (cached as ``_readings``)."""
        reading = self._stretched.get(raw)
        if reading is None:
            reading = self._reading(raw, True)
            if len(self._stretched) < _READING_LIMIT:
                self._stretched[raw] = reading
        return reading

    def _remember(self, raw: str) -> None:
        """Cache a word's reading; ``_readings`` last, as the others are read once it is
        there (another thread screening at the same time finds all or nothing)."""
        reading = self._reading(raw, False)
        self._parts[raw] = reading.part
        if reading.spelled != (raw,) or reading.part != raw:
            self._odd_raws.add(raw)
        if reading.terms:
            self._term_raws.add(raw)
        if reading.run:
            self._run_raws.add(raw)
        if reading.empty:
            self._empty_raws.add(raw)
        self._readings[raw] = reading

    def _word_hits(self, norm: Normalized) -> list[Match]:
        """Every match, the text read word by word (spaced letters joined, stretches read)."""
        words = split_words(norm.text, self._odd_word_hits)
        if not words:
            return []
        spelled = [self.spellings(w) for w in words]
        present: set[str] = set().union(*spelled)
        anchored = {
            id(b): b
            for a in present.intersection(self.anchor_keys)
            for b in self.anchored[a]
            if _rest_met(b, present)
        }
        found = list(self._term_hits(words, spelled))
        if not found and not anchored:
            return []
        stream = self._stream(words, spelled)
        tokens = present.union(stream[0].split())
        found += self._pattern_hits(anchored.values(), stream, tokens)
        found = self._without_exceptions(found, present, stream, tokens)
        return [self._match(norm, words, hit) for hit in _outermost(found)]

    def _without_exceptions(
        self,
        found: list[_Hit],
        present: set[str],
        stream: tuple[str, list[int], list[int]],
        tokens: _Words,
    ) -> list[_Hit]:
        for rule in {h.rule for h in found}:
            bounds = self._exceptions_met(rule, present, tokens)
            covers = [(h.first, h.last) for h in self._pattern_hits(bounds, stream, tokens)]
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


class _PatternSet:
    """An RE2 set of patterns and, last, one that matches every text. RE2 runs them as
    one automaton, in one pass over a text, and for patterns of this kind (words,
    classes, groups, bounded repeats: no look-around or back-references) matches
    exactly where Python's ``re`` does. Copied and pickled as its patterns (compiled
    again), as RE2's own object cannot be."""

    __slots__ = ("_set", "patterns")

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._set = re2.Set.SearchSet()
        for pattern in [*self.patterns, ""]:
            self._set.Add(pattern)
        self._set.Compile()

    def __reduce__(self) -> tuple[type[_PatternSet], tuple[tuple[str, ...]]]:
        return (_PatternSet, (self.patterns,))

    def match(self, text: bytes) -> list[int] | None:
        """The indices of the patterns that match ``text`` somewhere, in no order."""
        found: list[int] | None = self._set.Match(text)
        return found


def _pattern_set(patterns: list[str]) -> _PatternSet | None:
    """A ``_PatternSet`` of ``patterns``; None when RE2 cannot take them all."""
    try:
        return _PatternSet(patterns)
    except re2.error:
        return None


def _rest_met(bound: Bound, present: _Words) -> bool:
    """Every slot of an anchored entry has a word in the post (its anchor's slot has)."""
    return all(not present.isdisjoint(slot) for slot in bound.rest)


# Past this many places to try, one scan of the stream is cheaper than a match at each.
_MATCH_LIMIT = 6


def _spans(bound: Bound, stream: str, tokens: _Words) -> list[tuple[int, int]]:
    """``bound.regex.finditer(stream)`` as spans, with the pattern tried only where a
    word it can start with stands (``tokens`` holds every word of the stream).

    A match starts with the space before its first word, so no other place can hold
    one; after a match the next is looked for from its end, as ``finditer`` does.
    """
    firsts = bound.entry.firsts
    keys = bound.keys
    if firsts is None or keys is None:
        return [m.span() for m in bound.regex.finditer(stream)]
    words = tokens.intersection(firsts)
    if not words:
        return []
    if len(words) == 1:  # the common case: one word, most often once
        key = keys[next(iter(words))]
        at = stream.find(key)
        if at == -1:
            return []
        if stream.find(key, at + 1) == -1:
            found = bound.regex.match(stream, at)
            return [] if found is None else [(at, found.end())]
    starts: list[int] = []
    for word in words:
        key = keys[word]
        at = stream.find(key)
        while at != -1:
            starts.append(at)
            at = stream.find(key, at + 1)
    if not starts:
        return []
    starts.sort()
    if len(starts) > _MATCH_LIMIT:
        return [m.span() for m in bound.regex.finditer(stream, starts[0])]
    spans: list[tuple[int, int]] = []
    end = 0
    match = bound.regex.match
    for at in starts:
        if at >= end:
            found = match(stream, at)
            if found is not None:
                end = found.end()
                spans.append((at, end))
    return spans


def _joined(parts: list[str]) -> str | None:
    """The readings of ``marked`` ("." for a sentence mark) joined with "\x01", each "."
    moved onto the word before it (``tokens._mark_stops``): one "." after a word a
    sentence ends after, none before the first word or after the last.
    """
    joined = "\x01".join(parts).replace("\x01.", " .")
    while " . ." in joined:
        joined = joined.replace(" . .", " .")
    if joined.startswith("."):
        cut = joined.find("\x01")
        if cut == -1:
            return None
        joined = joined[cut + 1 :]
    while joined.endswith(" ."):
        joined = joined[:-2]
    return joined


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
    look, matched = lexicon._look(norm.text, norm.stream, norm.words)
    if look:
        matches += lexicon._hits(norm, matched)
    return matches
