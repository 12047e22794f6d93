"""C5 links: checked by registered domain, public-suffix aware (tldextract's bundled list).

A domain on the blocklist or in a blocked category is a clear breach; a shortener,
a punycode (``xn--``) host or a host written in look-alike letters of another
script hides where it goes, so a person checks it rather than it being passed. A
link whose query names an affiliate or referral code is C7 spam. Links are read
in the normalised text too, so "pornhub.com" written with a Cyrillic o, "pornhub[.]com"
and "pornhub dot com" are the same link.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import tldextract

from ..ids import RuleId
from .compiled import LinkRule, Screener
from .match import Confidence, Match
from .normalize import Normalized, normalize

__all__ = ["registered_domain", "screen_links"]

_DOT = r"(?:\.|\[\.\]|\(\.\)| dot | \[dot\] | \(dot\) )"
_LINK = re.compile(
    r"(?:https?://)?(?<![\w@.-])(?P<host>(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?" + _DOT + r")+"
    r"(?:[a-z]{2,24}|xn--[a-z0-9-]+))(?![\w-])(?P<rest>[/?#][^\s<>\"']*)?"
)
_DOT_WORD = re.compile(r"\.[a-z]{2}")  # a literal first character: scanned at memchr speed
# a link's last dot (".", "[.]" or "(.)") and the first letter of its top-level domain
_DOT_HINT = re.compile(r"\.[\])]?[a-z]")
_SPACE = re.compile(r"\s")
_ASCII_SPACES = "".join(chr(c) for c in range(128) if chr(c).isspace())
_OBFUSCATED = re.compile(_DOT)
_QUERY_KEY = re.compile(r"[?&#;]([a-z0-9_.-]+)=")
# Offline: never fetch a fresh suffix list at run time; the bundled snapshot is versioned.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=8192)
def registered_domain(url: str) -> str:
    """``example.co.uk`` for ``https://www.shop.example.co.uk/x``; "" when not a domain."""
    parts = _EXTRACT(url)
    if not parts.suffix or not parts.domain:
        return ""
    return f"{parts.domain}.{parts.suffix}".lower()


def _listed(host: str, screener: Screener) -> LinkRule | None:
    labels = host.split(".")
    for index in range(len(labels) - 1):
        rule = screener.domains.get(".".join(labels[index:]))
        if rule:
            return rule
    return None


def _verdicts(host: str, rest: str, idn: bool, screener: Screener) -> list[LinkRule]:
    domain = registered_domain(host)
    if not domain:
        return []
    verdicts = []
    listed = _listed(host, screener) or screener.domains.get(domain)
    if listed:
        verdicts.append(listed)
    elif idn or "xn--" in host:
        verdicts.append(LinkRule(RuleId.BAD_LINK, Confidence.WEAK, "links.lookalike"))
    if rest and not screener.affiliate_params.isdisjoint(_QUERY_KEY.findall(rest)):
        verdicts.append(LinkRule(RuleId.SPAM, Confidence.CLEAR, "links.affiliate_params"))
    return verdicts


def _link_matches(norm: Normalized) -> Iterator[re.Match[str]]:
    """``_LINK.finditer(text)``, scanning only the runs of non-space characters that can
    hold a link.

    A link has no whitespace in it unless a dot is spelled out (" dot "), and its last
    dot is followed by a letter, so without a spelled dot every link lies inside one
    run of non-space characters with such a dot (``_DOT_HINT``). Scanned alone, a run
    gives the matches the whole text gives there: whitespace on either side of it
    satisfies the pattern's look-behind and look-ahead as the run's ends do.
    """
    text = norm.text
    if not text.isascii() or _spelled_dot(norm):
        yield from _LINK.finditer(text)  # spelled dots, or other scripts' spaces
        return
    spaces: list[str] | None = None
    end = 0
    for hint in _DOT_HINT.finditer(text):
        at = hint.start()
        if at < end:
            continue  # inside the run just scanned
        if spaces is None:
            spaces = [c for c in _ASCII_SPACES if c in text]
        start = max([text.rfind(c, 0, at) for c in spaces], default=-1) + 1
        after = _SPACE.search(text, at)
        end = after.start() if after else len(text)
        yield from _LINK.finditer(text, start, end)


def _spelled_dot(norm: Normalized) -> bool:
    """ " dot ", "[dot]" or "(dot)" in the text (each makes "dot" one of its words)."""
    text = norm.text
    return "dot" in norm.words and (" dot " in text or "[dot]" in text or "(dot)" in text)


def _may_link(norm: Normalized) -> bool:
    """A dot before two letters, "://", "[.]", "(.)", " dot " or "[dot]" in the text;
    a scan for one character first where a string is looked for."""
    text = norm.text
    return (
        _DOT_WORD.search(text) is not None
        or ("/" in text and "://" in text)
        or ("[" in text and ("[.]" in text or "[dot]" in text))
        or ("(" in text and "(.)" in text)
        or ("dot" in norm.words and " dot " in text)
    )


def _matches(norm: Normalized, screener: Screener, field: str) -> list[Match]:
    clauses = screener.lexicon.clauses
    out: list[Match] = []
    for match in _link_matches(norm):
        host = match["host"]
        if "[" in host or "(" in host or " " in host:  # a dot written another way
            host = _OBFUSCATED.sub(".", host)
        span = norm.span(match.start(), match.end())
        idn = not norm.original[span[0] : span[1]].isascii()
        for verdict in _verdicts(host, match["rest"] or "", idn, screener):
            if verdict.rule not in clauses:
                continue  # a rule the policy does not enforce
            out.append(
                Match(
                    verdict.rule,
                    clauses[verdict.rule],
                    span,
                    verdict.confidence,
                    field=field,
                    entry=verdict.source,
                )
            )
    return out


def screen_links(norm: Normalized, links: Iterable[str], screener: Screener) -> list[Match]:
    """Matches for links in the text and in the post's ``links`` field."""
    out = _matches(norm, screener, "text") if _may_link(norm) else []
    for index, url in enumerate(links):
        link = normalize(url)
        if _may_link(link):
            out += _matches(link, screener, f"links.{index}")
    return out
