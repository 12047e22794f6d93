"""Words of a post, with the forms evasion hides them behind.

A post is split into words once; each word carries its spellings to look up:
itself, leetspeak read back ("sh1t", "$hit"), masked letters ("f**k"), letters
stretched ("fuuuuck"), and spaced or dotted letters joined ("f.u.c.k", "s h i t").
Only words that are not plain letters pay for more than one form.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from .normalize import TOKEN_TABLE, ascii_table, ascii_translate, deleet, stream_words

__all__ = [
    "TOKEN_TABLE",
    "Word",
    "has_stretch",
    "quick_words",
    "spaced_runs",
    "split_words",
    "squeeze_forms",
    "stream_words",
    "word_forms",
]

_TOKEN_BYTES = ascii_table(TOKEN_TABLE)
_WORD = re.compile(r"\S+")
_RUN3 = re.compile(r"([^\W\d_])\1\1")
_RUNS3 = re.compile(r"(.)\1{2,}")
_EDGE = "!|+*"
_LEET_L = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                         "$": "s", "!": "i", "+": "t", "|": "l", "8": "b", "9": "g"})  # fmt: skip
_SENTENCE_END = re.compile(r"[.!?\n]")
_SPACER = frozenset(" .-_*,/|~+:")


@dataclass(slots=True)
class Word:
    """One word of a post: its spellings, where it is, and whether a sentence ends after it."""

    forms: tuple[str, ...]
    start: int
    end: int
    masked: bool = False
    stop: bool = False


def word_forms(raw: str) -> tuple[tuple[str, ...], bool]:
    """Spellings of a word that is not plain letters; and whether it was masked with ``*``."""
    core = raw.strip(_EDGE) or raw
    forms = [core]
    if not core.isalpha() and not core.isdigit():  # "15" is a number, not "is"
        forms += [deleet(core), core.translate(_LEET_L), core.replace("*", "")]
    letters = core.replace("*", "")
    masked = "*" in core and letters.isalpha() and len(letters) >= 2 and core[0] != "*"
    return tuple(dict.fromkeys(f for f in forms if f)), masked


def squeeze_forms(word: str) -> tuple[str, ...]:
    """A stretched word read with its runs of three or more as one letter, then as two."""
    return (_RUNS3.sub(r"\1", word), _RUNS3.sub(r"\1\1", word))


def quick_words(text: str) -> tuple[list[str], str]:
    """Words of normalised text for the fast check, and the separated text."""
    separated = ascii_translate(text, _TOKEN_BYTES)
    return separated.split(), separated


def has_stretch(separated: str) -> bool:
    return _RUN3.search(separated) is not None


def spaced_runs(words: list[str]) -> list[tuple[int, int]]:
    """Index ranges of three or more one-letter words in a row ("f u c k")."""
    try:
        lengths = bytes(map(len, words))
    except ValueError:  # a word longer than 255 characters
        lengths = bytes(min(len(w), 255) for w in words)
    start = lengths.find(b"\x01\x01\x01")  # not ``in``: that first tries it as a number
    if start == -1:
        return []
    runs: list[tuple[int, int]] = []
    while start != -1:
        end = start
        while end < len(lengths) and lengths[end] == 1:
            end += 1
        runs.append((start, end))
        start = lengths.find(b"\x01\x01\x01", end)
    return runs


def _forms(raw: str, stretched: bool) -> tuple[tuple[str, ...], bool]:
    if raw.isalpha():
        forms: tuple[str, ...] = (raw,)
        masked = False
    else:
        forms, masked = word_forms(raw)
    if stretched and _RUN3.search(raw):
        forms = tuple(dict.fromkeys((*forms, *squeeze_forms(forms[0]))))
    return forms, masked


def split_words(text: str, known: Callable[[str], bool]) -> list[Word]:
    """Every word of normalised text with its spellings and span.

    Spaced or dotted letters are joined into one word when the joined word is one
    the lexicon knows (``known``), so "u r a" stays three words.
    """
    separated = ascii_translate(text, _TOKEN_BYTES)
    found = [(m.group(), m.start(), m.end()) for m in _WORD.finditer(separated)]
    joined = dict(spaced_runs([f[0] for f in found]))
    stretched = has_stretch(separated)
    words: list[Word] = []
    index = 0
    while index < len(found):
        raw, start, end = found[index]
        if not joined and not stretched and raw.isalpha():
            words.append(Word((raw,), start, end))
            index += 1
            continue
        last = joined.get(index, 0)
        first = _known_tail(found, index, last, known) if last else -1
        if first > index:  # "a r e t a r d": the article stays a word of its own
            joined[first] = last
        if last and first == index and _tight(text, found, index, last):
            raw, end, index = "".join(f[0] for f in found[index:last]), found[last - 1][2], last
        else:
            index += 1
        forms, masked = _forms(raw, stretched)
        words.append(Word(forms, start, end, masked))
    _mark_stops(text, words)
    return words


def _known_tail(
    found: list[tuple[str, int, int]], first: int, last: int, known: Callable[[str], bool]
) -> int:
    """Where the longest known joined word of a run of single letters starts, or -1."""
    for start in range(first, last - 2):
        if known("".join(f[0] for f in found[start:last])):
            return start
    return -1


def _tight(text: str, found: list[tuple[str, int, int]], first: int, last: int) -> bool:
    """Spaced letters sit close together on one line ("f . u . c . k", not a list)."""
    for (_, _, end), (_, start, _) in zip(
        found[first : last - 1], found[first + 1 : last], strict=False
    ):
        if len(text[end:start]) > 3 or not _SPACER.issuperset(text[end:start]):
            return False
    return True


def _mark_stops(text: str, words: list[Word]) -> None:
    """A sentence ends after the word before each ".", "!", "?" or line break."""
    starts = [w.start for w in words]
    for mark in _SENTENCE_END.finditer(text):
        index = bisect_right(starts, mark.start()) - 1
        if 0 <= index < len(words) - 1 and words[index].end <= mark.start() + 1:
            words[index].stop = True
