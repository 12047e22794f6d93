"""``process``: run a file of events through publish, queue, worker and store on a
virtual clock, and report.

Each event is handled at its CloudEvents ``time`` (the clock never goes back);
every timer that falls due at or before that time fires first, in due order,
through the same ``fire_timer`` actor the workers run; ``until`` moves the clock
on after the last event. One worker thread and a join after each step keep the
order, so the same file always gives the same report.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from dramatiq.brokers.stub import StubBroker

from ..events.envelope import parse_event
from ..events.errors import InvalidEvent
from ..events.publish import publish
from ..workflows.model import Decision
from .app import App, DramatiqSender
from .clock import VirtualClock
from .report import build_report

__all__ = ["Processor"]


class Processor:
    """Drives an embedded :class:`App` (StubBroker, virtual clock) over lines of events."""

    def __init__(self, app: App) -> None:
        if not isinstance(app.broker, StubBroker) or not isinstance(app.clock, VirtualClock):
            raise ValueError("process runs on the embedded StubBroker and a virtual clock")
        self.app = app
        self.broker: StubBroker = app.broker
        self.clock: VirtualClock = app.clock
        self.worker = app.worker(threads=1)
        app.store.client.set(f"{app.store.keys.prefix}:policy_version", app.policy.stamp)
        # When the next timer can fall due, so ``fire_due`` asks the store only then: a hint
        # kept from the commits' decisions; the store's timer index stays the truth.
        self._due_hint: list[int] = [
            int(score)
            for _, score in app.store.client.zrange(app.store.keys.timers, 0, -1, withscores=True)
        ]
        heapq.heapify(self._due_hint)
        chained = app.engine.on_commit

        def noted(tag: str, decision: Decision) -> None:
            for timer in decision.timers:
                heapq.heappush(self._due_hint, int(timer.due.timestamp() * 1000))
            if chained is not None:
                chained(tag, decision)

        app.engine.on_commit = noted

    def __enter__(self) -> Processor:
        self.worker.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.join()
        self.worker.stop()

    def join(self) -> None:
        """Wait until every stage's queue is empty (follow-up work included)."""
        queues = self.app.queue_names()
        while True:
            for name in queues:
                self.broker.join(name, fail_fast=True)
            if all(self.broker.queues[n].unfinished_tasks == 0 for n in queues):
                return

    def fire_due(self, until: datetime) -> int:
        """Fire every timer due at or before ``until``, one at a time, in due order."""
        fired = 0
        limit = int(until.timestamp() * 1000)
        if not self._due_hint or self._due_hint[0] > limit:
            return 0  # nothing can be due yet: no round trip to the store
        while True:
            due = self.app.store.next_due(limit)
            if due is None:
                while self._due_hint and self._due_hint[0] <= limit:
                    heapq.heappop(self._due_hint)  # all fired, follow-ups included
                return fired
            raw, score = due
            self.clock.advance_to(datetime.fromtimestamp(score / 1000, tz=until.tzinfo))
            self.app.actors["fire_timer"].send(raw)
            self.join()
            fired += 1

    def line(self, number: int, raw: str) -> None:
        """Publish one line of the file at its time (bad lines go to quarantine)."""
        if not raw.strip():
            return
        try:
            event = parse_event(raw, self.app.settings.limits())
        except InvalidEvent as exc:
            self.app.store.quarantine(
                raw=raw.encode("utf-8", "surrogatepass"),
                error=str(exc),
                stage="publish",
                at=self.clock.now(),
                line=number,
                event_id=exc.event_id,
            )
            return
        self.fire_due(event.time)
        self.clock.advance_to(event.time)
        publish(event, sender=DramatiqSender(self.app, number))
        self.join()

    def run(
        self,
        lines: Iterable[str],
        *,
        until: datetime | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        for number, raw in enumerate(lines, start=1):
            self.line(number, raw)
            if progress:
                progress(number)
        if until is not None:
            self.fire_due(until)
            self.clock.advance_to(until)
        self.join()
        return build_report(self.app.store)
