"""E3 images: media that depicts a child needs written consent for the group's purpose."""

from __future__ import annotations

from collections.abc import Iterable

from ...events.models import Media
from ..ids import RuleId
from ..policy import Policy
from ..registers import Registers
from .match import Match

__all__ = ["children_without_consent", "screen_images"]


def children_without_consent(
    media: Iterable[Media], registers: Registers, purpose: str
) -> list[str]:
    """Children depicted in ``media`` with no consent on record for ``purpose``, in order."""
    missing: list[str] = []
    for item in media:
        for child in item.depicts_children:
            if not registers.has_consent(child, purpose) and child not in missing:
                missing.append(child)
    return missing


def screen_images(media: Iterable[Media], registers: Registers, policy: Policy) -> list[Match]:
    """E3: one match per media item that depicts a child with no consent for the purpose."""
    clauses = policy.clauses_for(RuleId.CHILD_IMAGE_NO_CONSENT)
    purpose = policy.consent.group_post_purpose
    out: list[Match] = []
    for index, item in enumerate(media):
        if any(not registers.has_consent(c, purpose) for c in item.depicts_children):
            out.append(
                Match(
                    RuleId.CHILD_IMAGE_NO_CONSENT,
                    clauses,
                    (0, 0),
                    field=f"media.{index}",
                    entry="consent.register",
                )
            )
    return out
