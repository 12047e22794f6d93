"""C7 repeats: the same text posted again and again by one member in a short window.

The pure layer cannot remember; the caller passes the digests of the member's
recent posts (kept on the member record, under the member's hash tag) and keeps
this post's digest for next time. A digest is a hash of the words after
normalisation, so "BUY NOW!!" and "buy now" are the same text; it reveals nothing
of the words. Short posts ("thanks!", "see you there") are never repeats.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from ..ids import RuleId
from ..policy import Policy
from .match import Match
from .normalize import normalize

__all__ = ["post_digest", "recent_digests", "remember_post", "screen_repeats"]


def post_digest(text: str, policy: Policy) -> str:
    """A short hash of the post's words, or "" when the post is too short to count."""
    words = normalize(text).stream
    joined = " ".join(w for w in words if w != ".")
    if len(joined) < policy.spam.repeat_min_chars:
        return ""
    return hashlib.sha256(joined.encode()).hexdigest()[:20]


def recent_digests(recent: Iterable[tuple[str, str]], at: datetime, policy: Policy) -> list[str]:
    """Digests of posts within the policy's window of ``at`` (either side: no order promised)."""
    window = timedelta(minutes=policy.spam.repeat_window_minutes)
    out = []
    for digest, when in recent:
        if abs(datetime.fromisoformat(when.replace("Z", "+00:00")) - at) <= window:
            out.append(digest)
    return out


def remember_post(
    recent: Sequence[tuple[str, str]], digest: str, at: str, policy: Policy
) -> tuple[tuple[str, str], ...]:
    """The member's recent posts with this one added, the oldest dropped past the limit."""
    if not digest:
        return tuple(recent)
    kept = [*recent, (digest, at)]
    return tuple(sorted(kept, key=lambda item: item[1])[-policy.spam.recent_limit :])


def screen_repeats(text: str, recent: Sequence[str], policy: Policy) -> list[Match]:
    """A spam match when this post makes ``repeat_count`` copies within the window."""
    rule = policy.rules.get(RuleId.SPAM)
    if rule is None or not rule.enabled or not recent:
        return []
    digest = post_digest(text, policy)
    if not digest or recent.count(digest) + 1 < policy.spam.repeat_count:
        return []
    clauses = policy.clauses_for(RuleId.SPAM)
    return [Match(RuleId.SPAM, clauses, (0, len(text)), entry="spam.repeat")]
