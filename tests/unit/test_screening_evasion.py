"""The evasion set of issue 4: every variant of every breach is still caught.

Each base breach is rewritten the ways members slip words past a list: homoglyphs
from other scripts, fullwidth and mathematical letters, accents and strike-through
marks, zero-width characters, spaced and dotted letters, leetspeak, stretched
letters, masked letters and mixed case.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from esafety.workflows.policy import default_policy
from esafety.workflows.screening import screen_text

POLICY = default_policy()

_CYRILLIC = str.maketrans({"a": "\u0430", "e": "\u0435", "o": "\u043e", "c": "\u0441",
                           "p": "\u0440", "x": "\u0445", "i": "\u0456", "s": "\u0455"})  # fmt: skip
_GREEK = str.maketrans({"o": "\u03bf", "u": "\u03c5", "i": "\u03b9", "k": "\u03ba",
                        "t": "\u03c4", "v": "\u03bd"})  # fmt: skip
_LEET = str.maketrans({"i": "1", "e": "3", "a": "4", "o": "0", "s": "$", "t": "7"})


def _fullwidth(word: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in word)


def _bold(word: str) -> str:
    return "".join(chr(0x1D41A + ord(c) - 97) if "a" <= c <= "z" else c for c in word)


def _stretch(word: str) -> str:
    vowel = next((i for i, c in enumerate(word) if c in "aeiou"), 0)
    return word[: vowel + 1] + word[vowel] * 4 + word[vowel + 1 :]


VARIANTS: dict[str, Callable[[str], str]] = {
    "cyrillic": lambda w: w.translate(_CYRILLIC),
    "greek": lambda w: w.translate(_GREEK),
    "fullwidth": _fullwidth,
    "math bold": _bold,
    "accents": lambda w: "".join(c + "\u0301" if c in "aeiou" else c for c in w),
    "strike": lambda w: "".join(c + "\u0336" for c in w),
    "zero width": lambda w: "\u200b".join(w),
    "soft hyphen": lambda w: "\u00ad".join(w),
    "spaced": lambda w: " ".join(w),
    "dotted": lambda w: ".".join(w),
    "dashed": lambda w: "-".join(w),
    "leet": lambda w: w.translate(_LEET),
    "one leet letter": lambda w: w.replace("i", "1", 1).replace("o", "0", 1),
    "stretched": _stretch,
    "double letter": lambda w: w[:2] + w[1] + w[2:],
    "upper": str.upper,
    "mixed case": lambda w: "".join(c.upper() if i % 2 else c for i, c in enumerate(w)),
}

# (rule, template with {} for the disguised word, the word)
BASES = [
    ("profanity", "this rota is {}", "shit"),
    ("profanity", "{} this group", "fuck"),
    ("profanity", "you absolute {}", "wanker"),
    ("sexual", "send {} to me", "nudes"),
    ("sexual", "free {} in my bio", "porn"),
    ("hate", "the new kid is a {}", "retard"),
    ("violence", "watch the {} video", "beheading"),
    ("threat", "I'll {} you", "kill"),
    ("threat", "I will {} your kid", "stab"),
    ("harassment", "you are so {}", "worthless"),
]

CASES = [
    pytest.param(rule, template.format(fn(word)), id=f"{rule}-{word}-{name}")
    for rule, template, word in BASES
    for name, fn in VARIANTS.items()
]


@pytest.mark.parametrize(("rule", "text"), CASES)
def test_every_variant_is_caught(rule: str, text: str) -> None:
    assert rule in {m.rule.value for m in screen_text(text, POLICY)}


@pytest.mark.parametrize(
    "text",
    ["$h1t", "sh!t", "5h1t", "f**k off", "f*ck", "ph*ck", "fuuuuuuck", "s.h.i.t", "f . u . c . k",
     "s h i t", "sh1tty", "Ⓢⓗⓘⓣ", "\u0455h\u0456t"],
)  # fmt: skip
def test_common_profanity_disguises(text: str) -> None:
    assert "profanity" in {m.rule.value for m in screen_text(text, POLICY)}
