"""Fakes for tests of code built on esafety: inject these instead of monkeypatching.

``fake_app()`` is the embedded app (fakeredis store, StubBroker, virtual clock,
memory notifier); the pieces are exported for finer-grained tests.
"""

from __future__ import annotations

from datetime import datetime

from .workers.app import App, build_app
from .workers.clock import VirtualClock
from .workers.notifier import MemoryNotifier
from .workers.settings import Settings

__all__ = ["MemoryNotifier", "VirtualClock", "fake_app"]


def fake_app(start: datetime | None = None) -> App:
    """An embedded app with a virtual clock starting at ``start``."""
    return build_app(
        Settings(redis_url=None),
        embedded=True,
        clock=VirtualClock(start),
        notifier=MemoryNotifier(),
    )
