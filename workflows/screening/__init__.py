"""Screening: one module per rule family, all returning :class:`Match` (rule, clause, span).

The word lists, patterns and link lists are data files named by the policy
(``workflows/data/lexicon/*.txt``, ``workflows/data/links/*.txt``), compiled once
per policy (``Policy.screener``); nothing here reads a file or the clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ...events.models import Media
from ..policy import Policy
from ..registers import Registers
from .images import children_without_consent, screen_images
from .lexicon import screen_lexicon
from .links import registered_domain, screen_links
from .match import Confidence, Match
from .normalize import Normalized, normalize
from .personal import screen_personal_info
from .spam import post_digest, recent_digests, remember_post, screen_repeats

__all__ = [
    "Confidence",
    "Match",
    "Normalized",
    "children_without_consent",
    "normalize",
    "post_digest",
    "recent_digests",
    "registered_domain",
    "remember_post",
    "screen",
    "screen_images",
    "screen_text",
]


def screen_text(
    text: str, policy: Policy, links: Iterable[str] = (), *, recent: Sequence[str] = ()
) -> list[Match]:
    """Every rule that reads text: the lexicon rules, links, personal information, repeats.

    ``recent`` holds the digests (:func:`post_digest`) of the author's posts within
    the policy's repeat window.
    """
    screener = policy.screener
    norm = normalize(text)
    matches = screen_lexicon(norm, screener.lexicon)
    matches += screen_links(norm, links, screener)
    matches += screen_personal_info(norm, policy, screener)
    matches += screen_repeats(text, recent, policy)
    return matches


def screen(
    text: str,
    policy: Policy,
    registers: Registers,
    *,
    links: Iterable[str] = (),
    media: Iterable[Media] = (),
    recent: Sequence[str] = (),
) -> list[Match]:
    """All matches for a post: text rules plus images without consent (E3)."""
    return screen_text(text, policy, links, recent=recent) + screen_images(media, registers, policy)
