"""C5 links: checked by registered domain, public-suffix aware (tldextract's bundled list).

A blocklisted domain is a clear breach; a shortener or a punycode (``xn--``)
look-alike hides where it goes, so it is sent to a person rather than passed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from functools import lru_cache

import tldextract

from ..ids import RuleId
from ..policy import Policy
from .match import Confidence, Match

__all__ = ["registered_domain", "screen_links"]

_URL = re.compile(
    r"(?i)\b(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}/\S*"
)
# Offline: never fetch a fresh suffix list at run time; the bundled snapshot is versioned.
_EXTRACT = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


@lru_cache(maxsize=4096)
def registered_domain(url: str) -> str:
    """``example.co.uk`` for ``https://www.shop.example.co.uk/x``."""
    parts = _EXTRACT(url)
    return ".".join(p for p in (parts.domain, parts.suffix) if p).lower()


def _verdict(url: str, policy: Policy) -> Confidence | None:
    domain = registered_domain(url)
    if not domain:
        return None
    if domain in policy.links.blocklist:
        return Confidence.CLEAR
    if domain in policy.links.review or "xn--" in url.lower():
        return Confidence.WEAK
    return None


def _found(text: str) -> Iterator[tuple[str, tuple[int, int]]]:
    for match in _URL.finditer(text):
        yield match.group(), (match.start(), match.end())


def screen_links(text: str, links: Iterable[str], policy: Policy) -> list[Match]:
    """Matches for links in the text and in the post's ``links`` field."""
    clauses = policy.clauses_for(RuleId.BAD_LINK)
    out: list[Match] = []
    for url, span in _found(text):
        verdict = _verdict(url, policy)
        if verdict:
            out.append(Match(RuleId.BAD_LINK, clauses, span, verdict))
    for index, url in enumerate(links):
        verdict = _verdict(url, policy)
        if verdict:
            out.append(Match(RuleId.BAD_LINK, clauses, (0, 0), verdict, field=f"links.{index}"))
    return out
