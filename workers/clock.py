"""The one clock. Every decision, timer and audit entry reads time from here.

``SystemClock`` for workers; ``VirtualClock`` for ``process``, which moves to each
event's time and never goes back, so a year replays in seconds.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "VirtualClock"]


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC (the only place the engine reads the system time)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to, and only forward."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(1970, 1, 1, tzinfo=UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return self._now

    def advance_to(self, moment: datetime) -> datetime:
        """Move to ``moment`` unless that is in the past; return the clock's time."""
        with self._lock:
            if moment > self._now:
                self._now = moment
            return self._now
