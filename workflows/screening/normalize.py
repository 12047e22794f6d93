"""Text normalisation before matching, keeping a map back to the original spans.

Evasion (homoglyphs, zero-width characters, accents, spaced letters) is undone
here once, so every rule family matches against the same clean text; the index
map lets a match report its span in the text the member actually wrote.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Normalized", "deleet", "normalize"]

_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff", "\u00ad"}
# Confusable letters from other scripts that render like Latin ones.
_HOMOGLYPHS = str.maketrans(
    {
        "а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "х": "x", "у": "y", "і": "i",
        "ј": "j", "ѕ": "s", "ԁ": "d", "ɡ": "g", "һ": "h", "κ": "k", "ν": "v", "ο": "o",
        "α": "a", "ε": "e", "ι": "i", "τ": "t", "υ": "u", "ք": "p", "ɑ": "a", "ı": "i",
    }
)  # fmt: skip
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i", "+": "t", "|": "l"})  # fmt: skip
_SPACED = re.compile(r"(?<![\w])(?:[a-z0-9@$][ .\-_*]){2,}[a-z0-9@$](?![\w])")


@dataclass(frozen=True, slots=True)
class Normalized:
    """Normalised text and, for each of its characters, the index in the original."""

    text: str
    origin: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span of ``text[start:end]``."""
        if not self.origin:
            return (0, 0)
        first = self.origin[min(start, len(self.origin) - 1)]
        last = self.origin[min(max(end - 1, 0), len(self.origin) - 1)]
        return (first, last + 1)


def _fold_char(char: str) -> str:
    if char in _ZERO_WIDTH:
        return ""
    folded = unicodedata.normalize("NFKD", char.translate(_HOMOGLYPHS))
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", folded).casefold().translate(_HOMOGLYPHS)


def _join_spaced(text: str, origin: list[int]) -> tuple[str, list[int]]:
    out: list[str] = []
    out_origin: list[int] = []
    cursor = 0
    for match in _SPACED.finditer(text):
        out.append(text[cursor : match.start()])
        out_origin.extend(origin[cursor : match.start()])
        for index in range(match.start(), match.end(), 2):
            out.append(text[index])
            out_origin.append(origin[index])
        cursor = match.end()
    out.append(text[cursor:])
    out_origin.extend(origin[cursor:])
    return "".join(out), out_origin


def normalize(text: str) -> Normalized:
    """NFKC, case folding, homoglyphs, zero-width and combining marks, spaced letters."""
    chars: list[str] = []
    origin: list[int] = []
    if text.isascii():
        chars.append(text.lower())
        origin.extend(range(len(text)))
    else:
        for index, char in enumerate(text):
            folded = _fold_char(char)
            chars.append(folded)
            origin.extend([index] * len(folded))
    joined, mapped = _join_spaced("".join(chars), origin)
    return Normalized(joined, tuple(mapped))


def deleet(token: str) -> str:
    """Undo leetspeak in a token that mixes letters with digits or symbols."""
    return token.translate(_LEET)
