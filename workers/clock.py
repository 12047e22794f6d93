"""The one clock. Every decision, timer and audit entry reads time from here.

``SystemClock`` for workers; ``VirtualClock`` for ``process``, which moves to each
event's time and never goes back, so a year replays in seconds; ``ScaledClock`` for
end-to-end tests of real worker processes, where a 1-hour deadline must pass in a
second (only when ``ESAFETY_TEST_CLOCK_*`` is set; never a production default).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

__all__ = [
    "Clock",
    "ScaledClock",
    "SystemClock",
    "VirtualClock",
    "cpu_stopwatch",
    "real_delay_ms",
    "stopwatch",
]


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


class ScaledClock:
    """Test time for real worker processes: ``epoch`` at the real instant ``origin``
    (a Unix time), then ``speed`` virtual seconds per real second.

    Every process given the same three numbers (through ``ESAFETY_TEST_CLOCK_*``)
    reads the same time, so workers, ``esafety review`` and the test agree, and a
    timer's delayed message waits its virtual delay divided by ``speed``.
    """

    def __init__(self, epoch: datetime, origin: float, speed: float) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        self.epoch = epoch
        self.origin = origin
        self.speed = speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(
            self.epoch.timestamp() + (time.time() - self.origin) * self.speed, tz=UTC
        )


def real_delay_ms(clock: Clock, due: datetime) -> int:
    """Real milliseconds until ``due`` on ``clock`` (rounded up, never negative)."""
    virtual = (due - clock.now()).total_seconds()
    speed = float(getattr(clock, "speed", 1.0))
    return max(0, -int(-virtual * 1000 // speed))


def stopwatch(*, cpu: bool = False) -> Callable[[], float]:
    """Seconds elapsed since the call, from a monotonic counter (``cpu``: this process's
    CPU seconds, all threads, which a machine shared with other jobs does not inflate).

    For measuring (a replay's speed, a benchmark), never for deciding: decisions read
    a :class:`Clock`. Kept here so this module stays the one place that reads time.
    """
    read = time.process_time if cpu else time.perf_counter
    start = read()
    return lambda: read() - start


def cpu_stopwatch() -> Callable[[], float]:
    """CPU seconds this process has spent since the call.

    For benchmarks on a shared machine: the work one core does, whatever else runs.
    """
    start = time.process_time()
    return lambda: time.process_time() - start
