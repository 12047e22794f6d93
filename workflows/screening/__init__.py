"""Screening: one module per rule family, all returning :class:`Match` (rule, clause, span)."""

from __future__ import annotations

from collections.abc import Iterable

from ...events.models import Media
from ..policy import Policy
from ..registers import Registers
from .images import children_without_consent, screen_images
from .lexicon import screen_lexicon
from .links import registered_domain, screen_links
from .match import Confidence, Match
from .normalize import Normalized, normalize
from .personal import screen_personal_info

__all__ = [
    "Confidence",
    "Match",
    "Normalized",
    "children_without_consent",
    "normalize",
    "registered_domain",
    "screen",
    "screen_text",
]


def screen_text(text: str, policy: Policy, links: Iterable[str] = ()) -> list[Match]:
    """Every rule that reads text: the lexicon rules, links and personal information."""
    matches = screen_lexicon(normalize(text), policy)
    matches += screen_links(text, links, policy)
    matches += screen_personal_info(text, policy)
    return matches


def screen(
    text: str,
    policy: Policy,
    registers: Registers,
    *,
    links: Iterable[str] = (),
    media: Iterable[Media] = (),
) -> list[Match]:
    """All matches for a post: text rules plus images without consent (E3)."""
    return screen_text(text, policy, links) + screen_images(media, registers, policy)
