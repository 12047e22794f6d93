"""E4 personal information: emails, phone numbers, postcodes, home addresses, a named
child with their school (names from the policy's directory are lexicon entries).

Phone numbers count when libphonenumber calls them possible, not only when they
are in an allocated range (the policy's default); the charity's own published
contacts on the policy's allowlist do not count. Each detector first looks for a
character it cannot do without (an "@", a digit, the word "school"), so the
common post costs a few substring checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import phonenumbers

from ..ids import RuleId
from ..policy import Policy
from .compiled import Screener
from .match import Match
from .normalize import Normalized

__all__ = ["screen_personal_info"]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
_SPELLED_EMAIL = re.compile(
    r"[a-z0-9._-]+ ?(?:\(at\)|\[at\]| at ) ?[a-z0-9-]+ ?(?:\.|\(dot\)|\[dot\]| dot ) ?"
    r"(?:com|org|net|co|uk|me|io)\b"
)
# nine digits close together (a UK number has ten or eleven): the costly matcher runs
# only then. Patterns here start with a digit so the engine skips ahead to digits.
_PHONE_HINT = re.compile(r"\d(?:[ ().-]{0,2}\d){8}")
_INWARD = re.compile(r"\d[abd-hjlnp-uw-z]{2}\b")
_DIGIT = re.compile(r"[0-9]")
_POSTCODE = re.compile(r"\b([a-z]{1,2})\d[a-z\d]? ?\d[abd-hjlnp-uw-z]{2}\b")
_STREET = (
    r"road|rd|street|avenue|ave|lane|close|crescent|gardens|gdns|terrace|mews|grove|"
    r"drive|way|court|place|walk|hill|park|view|row|square|rise|st"
)
_ADDRESS = re.compile(
    r"\d{1,4}[a-z]?,? (?P<name>[a-z][a-z'-]+(?: [a-z][a-z'-]+){0,2}) (?P<kind>" + _STREET + r")\b"
)
_ADDRESS_ASCII = re.compile(_ADDRESS.pattern.replace(r"\d", "[0-9]"))  # the same on ASCII
_STREET_WORDS = frozenset(_STREET.split("|"))
_SCHOOL_WORDS = frozenset(["primary", "school", "academy", "nursery", "infants", "juniors",
                           "college", "high"])  # fmt: skip
# An ASCII post's characters by class, so the detectors' first checks are scans for a
# literal: "9" a digit, "a" a letter an inward code may end with, "w" another word
# character, "s" a separator a phone number allows, "k" a symbol a stream word keeps.
_SHAPE = bytes(
    ord(
        "9" if c.isdigit()
        else "a" if re.fullmatch(r"[abd-hjlnp-uw-z]", c)
        else "w" if re.fullmatch(r"\w", c)
        else "s" if c in " ().-"
        else "k" if c in "@$|+*"
        else "x"
    )
    for c in map(chr, range(256))
)  # fmt: skip
# a shape's marks as byte values: ``57 in shape`` is a scan for one byte, where
# ``b"9" in shape`` first fails to read b"9" as a number (an exception raised and cleared)
_DIGIT_MARK = ord("9")
_SYMBOL_MARK = ord("k")
_SHAPE_PHONE = re.compile(rb"9(?:s{0,2}9){8}")  # _PHONE_HINT, on an ASCII post's shape
_SHAPE_INWARD = re.compile(rb"9aa(?![9aw])")  # _INWARD, the same
# A street word or a school word follows a space and ends at a word boundary. In an
# ASCII post without a symbol a stream word keeps ("k" in the shape), what ends it
# ends a stream word too, so it is one of the post's words (``Normalized.words``).
_LOOSE_STREET = frozenset({"drive", "way", "court", "place", "walk", "hill", "park", "view", "row",
                           "square", "rise", "st"})  # fmt: skip
_NOT_A_STREET_NAME = frozenset(
    [
        "the",
        "a",
        "an",
        "of",
        "in",
        "at",
        "to",
        "for",
        "and",
        "or",
        "on",
        "min",
        "mins",
        "minute",
        "minutes",
        "mile",
        "miles",
        "hour",
        "hours",
        "year",
        "years",
        "day",
        "days",
        "week",
        "weeks",
        "km",
        "metres",
        "meters",
        "yards",
        "kids",
        "children",
        "people",
        "more",
        "times",
        "steps",
    ]
)
_NAMED_CHILD = re.compile(
    r"\b(?P<name>[A-Z][a-z]+)\b(?:'s)?[^.!?\n]{0,40}?\b(?:goes to|attends|is at|at|from|in)\s+"
    r"(?:St\.? |Saint )?[A-Z][\w'-]+(?: [A-Z][\w'-]+){0,3} "
    r"(?:Primary|School|Academy|Nursery|Infants|Juniors|College|High)\b"
)


def _canon(value: str) -> str:
    if "@" in value:
        return value.strip().lower()
    digits = re.sub(r"\D", "", value)
    return digits if len(digits) >= 5 else re.sub(r"\s+", "", value.lower())


def _allowed(value: str, policy: Policy) -> bool:
    canon = _canon(value)
    return any(_canon(item) == canon for item in policy.personal_info.allowlist)


def _phones(text: str, policy: Policy) -> Iterator[tuple[int, int]]:
    if _PHONE_HINT.search(text) is None:
        return  # nothing with enough digits to be a number: skip the costly matcher
    matcher = phonenumbers.PhoneNumberMatcher(
        text, policy.personal_info.default_region, leniency=phonenumbers.Leniency.POSSIBLE
    )
    for found in matcher:
        inside_link = found.start > 0 and text[found.start - 1] in "/=_?&#.-"
        if not inside_link and not _allowed(found.raw_string, policy):
            yield (found.start, found.end)


def _matches_at(
    pattern: re.Pattern[str], text: str, starts: Iterable[int]
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)`` for a pattern that can match only at ``starts``
    (and never matches nothing): tried there in order, past the end of each match."""
    end = 0
    for at in sorted(set(starts)):
        if at >= end:
            found = pattern.match(text, at)
            if found is not None:
                end = found.end()
                yield found


def _email_matches(text: str) -> Iterator[re.Match[str]]:
    """``_EMAIL.finditer(text)``, tried only where an "@" is.

    A match is a run of local-part characters, an "@" and a domain. From anywhere in
    the run before an "@" the pattern reaches that "@" with the same domain to read,
    so it matches from the run's first character (or from the end of the last match)
    or not at all.
    """
    end = 0
    at = text.find("@")
    while at != -1:
        start = at
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.+-"):
            start -= 1  # [\w.+-]: \w is alphanumeric or "_"
        start = max(start, end)
        if start < at:
            found = _EMAIL.match(text, start)
            if found is not None:
                end = found.end()
                yield found
        at = text.find("@", max(at + 1, end))


def _emails(norm: Normalized, policy: Policy) -> list[tuple[int, int]]:
    """Written and spelled-out email addresses (a list: most posts have none)."""
    spans: list[tuple[int, int]] = []
    if "@" in norm.original:
        spans += [
            (m.start(), m.end())
            for m in _email_matches(norm.original)
            if not _allowed(m.group(), policy)
        ]
    text = norm.text
    if (
        ("dot" in norm.words and (" dot " in text or "(dot)" in text or "[dot]" in text))
        or ("(" in text and "(at)" in text)
        or ("[" in text and "[at]" in text)
    ):  # " dot ", "(dot)" and "[dot]" each make "dot" one of the words
        spans += [norm.span(m.start(), m.end()) for m in _SPELLED_EMAIL.finditer(text)]
    return spans


def _postcodes(norm: Normalized, screener: Screener, policy: Policy) -> Iterator[tuple[int, int]]:
    areas = screener.postcode_areas
    # a postcode ends with an inward code ("1ab"), two to five characters after its start
    text = norm.text
    starts = [
        s for m in _INWARD.finditer(text) for s in range(max(0, m.start() - 5), m.start() - 1)
    ]
    for m in _matches_at(_POSTCODE, text, starts):
        span = norm.span(m.start(), m.end())
        written = norm.original[span[0] : span[1]]
        if " " not in written and not written.isupper():
            continue  # "n00dz" is a word; a postcode is spaced or in capitals
        if (not areas or m[1] in areas) and not _allowed(m.group(), policy):
            yield span


def _addresses(
    norm: Normalized, policy: Policy, matches: Iterable[re.Match[str]]
) -> Iterator[tuple[int, int]]:
    text = norm.text
    for m in matches:
        if m["name"].split()[0] in _NOT_A_STREET_NAME or text[m.start() - 1 : m.start()].isalnum():
            continue
        span = norm.span(m.start(), m.end())
        if m["kind"] in _LOOSE_STREET and not _capitalised(norm.original[span[0] : span[1]]):
            continue  # "a 5 minute walk", "10 min drive"
        if not _allowed(norm.original[span[0] : span[1]], policy):
            yield span


def _house_numbers(norm: Normalized, shape: bytes) -> list[int]:
    """Where an address can start in an ASCII post without a symbol a stream word keeps:
    the digits close enough before a street word to be its house number, within the
    three spaces before the one the street word follows (an address has a space after
    its number and at most two inside its name). The street word ends at a word
    boundary, so it is one of the post's words."""
    text = norm.text
    starts: list[int] = []
    for street in _STREET_WORDS.intersection(norm.words):
        key = " " + street
        at = text.find(key)
        while at != -1:
            start = at
            for _ in range(4):
                start = text.rfind(" ", 0, start)
                if start == -1:
                    break
            digit = shape.find(b"9", start + 1, at)
            while digit != -1:
                starts.append(digit)
                digit = shape.find(b"9", digit + 1, at)
            at = text.find(key, at + 1)
    return starts


def _capitalised(raw: str) -> bool:
    words = raw.split()[1:]
    return bool(words) and all(w[:1].isupper() for w in words)


def _named_children(norm: Normalized, screener: Screener) -> Iterator[tuple[int, int]]:
    text = norm.original
    if not screener.first_names or not (
        "School" in text or "Primary" in text or "Academy" in text or "Nursery" in text
        or "Infants" in text or "Juniors" in text or "College" in text or "High" in text
    ):  # fmt: skip
        return
    for m in _NAMED_CHILD.finditer(norm.original):
        if m["name"].lower() in screener.first_names:
            yield (m.start(), m.end())


def screen_personal_info(norm: Normalized, policy: Policy, screener: Screener) -> list[Match]:
    """E4 matches: contact details, postcodes, addresses and named children with schools."""
    rule = policy.rules.get(RuleId.PERSONAL_INFO)
    if rule is None or not rule.enabled:
        return []
    spans = _emails(norm, policy)
    if norm.text.isascii():  # the first checks are literal scans of the text's shape
        shape = norm.text.encode("ascii").translate(_SHAPE)
        if _DIGIT_MARK in shape:
            # a number in the original is one in the text (other scripts' digits would
            # leave the text not ASCII); ``_phones`` looks at the original itself
            if _SHAPE_PHONE.search(shape):
                spans += _phones(norm.original, policy)
            if _SHAPE_INWARD.search(shape):
                spans += _postcodes(norm, screener, policy)
            if _SYMBOL_MARK in shape:
                spans += _addresses(norm, policy, _ADDRESS_ASCII.finditer(norm.text))
            else:
                starts = _house_numbers(norm, shape)
                if starts:
                    found = _matches_at(_ADDRESS_ASCII, norm.text, starts)
                    spans += _addresses(norm, policy, found)
        if screener.first_names and (
            not norm.identity or _SYMBOL_MARK in shape or not _SCHOOL_WORDS.isdisjoint(norm.words)
        ):  # the school word is read in the original: words of the text decide for ASCII
            spans += _named_children(norm, screener)
    else:
        if _DIGIT.search(norm.text):
            spans += _phones(norm.original, policy)
            spans += _postcodes(norm, screener, policy)
            spans += _addresses(norm, policy, _ADDRESS.finditer(norm.text))
        spans += _named_children(norm, screener)
    if not spans:
        return []
    clauses = policy.clauses_for(RuleId.PERSONAL_INFO)
    return [
        Match(RuleId.PERSONAL_INFO, clauses, span, entry="personal_info.detectors")
        for span in sorted(set(spans))
    ]
