"""Text normalisation before matching, with a lazy map back to the original spans.

Evasion is undone here once, so every rule family reads the same clean text:
Unicode NFKC and case folding, accents and other combining marks dropped,
zero-width and format characters dropped, emoji and symbols read as spaces, and
confusable look-alikes from other scripts (Cyrillic a, Greek omicron, small capitals)
read as the Latin letters they imitate (``data/confusables.txt``, Unicode's table).

Every character of the original folds on its own, so the normalised text is the
concatenation of the folded characters and a span found in it maps back to the
text the member wrote. That map is built only when a match needs it: most posts
match nothing, and ASCII posts fold with one ``str.lower``.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cached_property
from pathlib import Path

__all__ = [
    "TOKEN_TABLE",
    "Normalized",
    "ascii_table",
    "ascii_translate",
    "deleet",
    "fold_char",
    "normalize",
    "stream_words",
]

_CONFUSABLES_FILE = Path(__file__).parent.parent / "data" / "confusables.txt"
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")
# Typographic punctuation that NFKC keeps but members type for the ASCII one.
_PUNCT = {"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u02bc": "'", "\u2032": "'"}
_PUNCT |= {"\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-"}
_PUNCT |= {"\u2026": "...", "\u00b7": ".", "\u2022": "."}
_KEEP = frozenset("abcdefghijklmnopqrstuvwxyz0123456789@$!|+*")
# Everything ASCII that is not a letter, digit or leet symbol separates words. Every
# ASCII code is in the table, so ``str.translate`` takes its fast path for ASCII posts.
TOKEN_TABLE = {i: i if chr(i) in _KEEP else 32 for i in range(128)}
# The same with sentence ends (".!?" and line breaks) kept as "." for ``stream_words``.
_STREAM_TABLE = {i: 46 if chr(i) in ".!?\n" else v for i, v in TOKEN_TABLE.items()}


def ascii_table(table: dict[int, int]) -> bytes:
    """An ASCII ``str.translate`` table as a ``bytes.translate`` one: an ASCII text
    encoded, translated as bytes and decoded is the text translated as a string, at
    a third of the cost."""
    return bytes(table[i] for i in range(128)) + bytes(range(128, 256))


_STREAM_BYTES = ascii_table(_STREAM_TABLE)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "+": "t", "|": "l", "8": "b", "9": "g"})  # fmt: skip


def _read_confusables(path: Path) -> dict[str, str]:
    table: dict[str, str] = {}
    for line in path.read_text("utf-8").splitlines():
        if line.startswith("U+"):
            code, letter = line.split()[:2]
            table[chr(int(code[2:], 16))] = letter
    return table


class _FoldTable(dict[int, str]):
    """``str.translate`` table (keyed by code point) that folds a character on first sight."""

    def __init__(self, confusables: dict[str, str]) -> None:
        super().__init__()
        self.confusables = confusables

    def __missing__(self, code: int) -> str:
        folded = self._fold(chr(code))
        self[code] = folded
        return folded

    def _fold(self, char: str) -> str:
        if char.isascii():
            return char.lower()
        if char in _PUNCT:
            return _PUNCT[char]
        category = unicodedata.category(char)
        if category in ("Cf", "Mn", "Me", "Cc") or char in "\u034f\u180e":
            return ""  # zero-width, format, combining and control characters
        text = unicodedata.normalize("NFKD", char)
        text = "".join(c for c in text if not unicodedata.combining(c))
        text = unicodedata.normalize("NFKC", text).casefold()
        if category in ("So", "Sk", "Cs", "Co", "Zs", "Zl", "Zp") and not text.isalnum():
            return " "  # emoji and symbols separate words (circled letters stay letters)
        return "".join(self.confusables.get(c, c) for c in text)


_TABLE: list[_FoldTable] = []


def _table() -> _FoldTable:
    if not _TABLE:
        _TABLE.append(_FoldTable(_read_confusables(_CONFUSABLES_FILE)))
    return _TABLE[0]


def fold_char(char: str) -> str:
    """What one character of a post becomes in the normalised text (maybe nothing)."""
    return _table()[ord(char)]


class Normalized:
    """Normalised text, the original, and (on demand) where each character came from."""

    __slots__ = ("__dict__", "identity", "original", "stream", "text", "words")

    def __init__(self, text: str, original: str) -> None:
        self.text = text
        self.original = original
        # an ASCII post folds character for character: spans map to themselves
        self.identity = len(text) == len(original) and original.isascii()
        # split once for every rule family that reads words: ``stream_words`` of the
        # text, and its distinct words ("." among them when a sentence ends)
        self.stream = stream_words(text)
        self.words = frozenset(self.stream)

    @cached_property
    def origin(self) -> tuple[int, ...]:
        """For each character of ``text``, its index in ``original``."""
        original = self.original
        if self.identity:
            return tuple(range(len(self.text)))
        table = _table()
        out: list[int] = []
        done = 0
        for run in _NON_ASCII.finditer(original):  # an ASCII character folds to one
            out.extend(range(done, run.start()))
            for index in range(run.start(), run.end()):
                out.extend([index] * len(table[ord(original[index])]))
            done = run.end()
        out.extend(range(done, len(original)))
        return tuple(out)

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``text[start:end]``."""
        if self.identity:  # what ``origin`` gives, without building it
            size = len(self.text)
            if not size:
                return (0, 0)
            return (min(start, size - 1), min(max(end - 1, 0), size - 1) + 1)
        origin = self.origin
        if not origin:
            return (0, 0)
        first = origin[min(start, len(origin) - 1)]
        last = origin[min(max(end - 1, 0), len(origin) - 1)]
        return (first, last + 1)


_FOLDED: dict[str, str] = {}  # runs of other scripts' characters, folded (posts repeat them)


def _fold_run(match: re.Match[str]) -> str:
    run = match.group()
    folded = _FOLDED.get(run)
    if folded is None:
        folded = run.translate(_table())
        if len(_FOLDED) < 50_000:
            _FOLDED[run] = folded
    return folded


def normalize(text: str) -> Normalized:
    """NFKC, case folding, confusables, zero-width and combining marks, emoji as spaces."""
    if text.isascii():
        return Normalized(text.lower(), text)
    return Normalized(_NON_ASCII.sub(_fold_run, text).lower(), text)


def stream_words(text: str) -> list[str]:
    """Words of normalised text for phrase matching, with "." where a sentence ends."""
    return ascii_translate(text, _STREAM_BYTES).replace(".", " . ").split()


def ascii_translate(text: str, table: bytes) -> str:
    """``text.translate`` by an ``ascii_table``, done on the text's UTF-8 bytes: an ASCII
    character is one byte below 128 there and every other character bytes above it,
    which the table leaves alone, so the result is the same at a fraction of the cost
    (``str.translate`` looks a text with other characters up one character at a time).
    """
    return text.encode("utf-8", "surrogatepass").translate(table).decode("utf-8", "surrogatepass")


def deleet(token: str) -> str:
    """Undo leetspeak in a token that mixes letters with digits or symbols."""
    return token.translate(_LEET)
