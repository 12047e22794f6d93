"""``publish()``: validate an event and hand its bytes to a :class:`Sender`.

The sender is injected so producers can publish to dramatiq, to a file or to a
test double without this package knowing about any queue.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from .envelope import Event, parse_event
from .limits import Limits

__all__ = ["Sender", "encode_event", "publish"]


class Sender(Protocol):
    """Where validated event bytes go (a queue, a list in a test)."""

    def send(self, body: bytes, *, event: Event) -> None: ...


def encode_event(event: Event) -> bytes:
    """The canonical bytes of an event: compact JSON with sorted keys."""
    return json.dumps(event.envelope_dict(), separators=(",", ":"), sort_keys=True).encode()


def publish(
    event: Event | dict[str, Any] | bytes | str,
    *,
    sender: Sender,
    limits: Limits | None = None,
) -> Event:
    """Validate ``event`` and send it; raises :class:`InvalidEvent` before sending bad input."""
    parsed = event if isinstance(event, Event) else parse_event(event, limits)
    sender.send(encode_event(parsed), event=parsed)
    return parsed
