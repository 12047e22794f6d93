"""``process``: run a file of events through publish, the actors' handlers and the store
on a virtual clock, and report.

Each event is handled at its CloudEvents ``time`` (the clock never goes back);
every timer that falls due at or before that time fires first, in due order,
through the same ``fire_timer`` actor the workers run; ``until`` moves the clock
on after the last event. The same file always gives the same report.

Why a local queue: embedded, every message went through dramatiq's StubBroker, a
consumer thread and a worker thread, with a join after each step, so the one
worker ran the handlers one at a time anyway; the hand-offs between threads and
dramatiq's message encoding and middleware cost more than a commit. Here each
message is a call of the same actor (``app.actors[name]``, the functions the
workers run) taken from one in-process FIFO queue, on this thread, until nothing
is left: every stage's queue stays first in, first out, and each handler runs
alone, as with one worker thread. A handler that raises is handed to the
StubBroker's worker as the same message, so dramatiq's retries, backoff and
dead letters apply to it as before (the handlers are idempotent: at least once).
``Processor(app, broker=True)`` sends every message through the StubBroker, the
old path, which ``tests/unit/test_process_paths.py`` compares report for report; it
is also the path when the broker carries a middleware other than the app's own
(metrics, a test's recorder), so that it sees every message as before.

Signed heads (issue 9: "at every commit, or every N entries and on shutdown"): the
workers sign each changed chain's head inside its commit, so that a crash never leaves
entries past a signed head. Embedded, the store is this process's memory and dies with
it, so there is no such window: ``process`` keeps each chain's last committed entry and
signs its head once, when the work is done (``join``, the end of ``run``, the exit),
with the same signer and the same rows (``head_rows``). The heads left in the store are
those of a signature at every commit, byte for byte (Ed25519 signatures are
deterministic): the last one of each chain wins either way. ``heads_at_end=False``
signs in every commit, as the workers do.
"""

from __future__ import annotations

import gc
import heapq
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from dramatiq.brokers.stub import StubBroker

from ..events.envelope import Event, parse_event
from ..events.errors import InvalidEvent
from ..events.limits import Limits
from ..events.publish import publish
from ..events.signing import SIGNATURE_ATTRIBUTE
from ..workflows.model import AuditEntry, Decision, Timer
from .app import App, DramatiqSender
from .broker import middleware
from .clock import VirtualClock
from .engine import Dispatch
from .middleware import Quarantine
from .report import build_report
from .signing import HeadSigner, LazyHeadSigner, head_rows

__all__ = ["LocalQueue", "Processor"]

Message = tuple[str, tuple[Any, ...]]
_FREEZE_EVERY = 1000


class LocalQueue:
    """One FIFO of actor calls (name, args), run on the calling thread, and the
    :class:`Dispatch` the engine hands follow-up work to while ``process`` runs."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.pending: deque[Message] = deque()

    # -- Dispatch (the engine's follow-up work) ----------------------------------
    def deliver(self, tag: str, effect_ids: list[str]) -> None:
        self.pending.append(("deliver", (tag, effect_ids)))

    def schedule(self, timer_json: str, timer: Timer) -> None:
        """A virtual clock fires timers from the store's index in due order (as ActorDispatch)."""

    def command(self, command_json: str) -> None:
        self.pending.append(("apply_command", (command_json,)))

    # -- running -----------------------------------------------------------------
    def send(self, actor: str, *args: Any) -> None:
        self.pending.append((actor, args))

    def drain(self) -> bool:
        """Run every pending call in order; False when one failed and went to the broker."""
        pending, actors = self.pending, self.app.actors
        while pending:
            name, args = pending.popleft()
            try:
                actors[name](*args)
            except Exception:
                # the same message through dramatiq: its retries, backoff, dead letters
                actors[name].send_with_options(args=args)
                return False
        return True


class _LocalActor:
    """What :class:`DramatiqSender` sends with: onto the local queue, not the broker."""

    def __init__(self, queue: LocalQueue) -> None:
        self.queue = queue

    def send(self, body: str, line: int | None) -> None:
        self.queue.send("handle_event", body, line)


class _LocalSender(DramatiqSender):
    """:class:`DramatiqSender` (signing included), handing the body to the local queue.

    A body that is ``encode_event`` of the event, unsigned and within the payload limit
    goes with its event (``Engine.preparsed``): parsing it again would give that event
    (``tests/unit/test_process_paths.py`` checks the round trip), so the handler does
    not. A body this sender signs, or one the handler's parse would refuse, is parsed.
    """

    def __init__(
        self, app: App, line: int | None, queue: LocalQueue, preparse: Limits | None
    ) -> None:
        super().__init__(app, line)
        self.actor = _LocalActor(queue)
        self.queue = queue
        self.preparse = preparse

    def send(self, body: bytes, *, event: Event) -> None:
        limits = self.preparse
        if (
            limits is None
            or len(body) > limits.max_payload_bytes
            or event.source in self.keys
            or SIGNATURE_ATTRIBUTE in event.extensions
        ):
            super().send(body, event=event)
            return
        text = body.decode("utf-8")
        self.queue.app.engine.preparsed[text] = event
        self.queue.send("handle_event", text, self.line)


class Processor:
    """Drives an embedded :class:`App` (StubBroker, virtual clock) over lines of events."""

    def __init__(self, app: App, *, broker: bool | None = None, heads_at_end: bool = True) -> None:
        if not isinstance(app.broker, StubBroker) or not isinstance(app.clock, VirtualClock):
            raise ValueError("process runs on the embedded StubBroker and a virtual clock")
        self.app = app
        self.broker: StubBroker = app.broker
        self.clock: VirtualClock = app.clock
        self.worker = app.worker(threads=1)
        self.via_broker: bool | None = broker
        self.limits = app.settings.limits()
        self.heads_at_end = heads_at_end
        self.local = LocalQueue(app)
        self._dispatch: Dispatch | None = app.engine.dispatch
        app.store.client.set(f"{app.store.keys.prefix}:policy_version", app.policy.stamp)
        # The timer index, mirrored: (due ms, JSON) of each timer the store held at the start
        # or a commit of this run added (``on_commit``), once each, in a heap whose order is
        # the index's (score, then member: UTF-8 keeps code point order). So ``fire_due``
        # needs no range query; before firing, the store says if the timer is still there.
        store = app.store
        self._due: list[tuple[int, str]] = [
            (int(score), member.decode())
            for member, score in store.client.zrange(store.keys.timers, 0, -1, withscores=True)
        ]
        heapq.heapify(self._due)
        self._queued = {member for _, member in self._due}
        # the signer, kept aside while ``process`` runs; each chain's last committed entry
        self._signer: HeadSigner | LazyHeadSigner | None = None
        self._unsigned: dict[tuple[str, str], AuditEntry] = {}
        chained = app.engine.on_commit

        def noted(tag: str, decision: Decision) -> None:
            for timer in decision.timers:
                member = store.timer_member(timer)
                if member not in self._queued:
                    self._queued.add(member)
                    heapq.heappush(self._due, (int(timer.due.timestamp() * 1000), member))
            if self._signer is not None:
                for entry in decision.audit:
                    self._unsigned[(tag, entry.case_id)] = entry
            if chained is not None:
                chained(tag, decision)

        app.engine.on_commit = noted

    def __enter__(self) -> Processor:
        if self.via_broker is None:  # decided here: middleware is added after build_app
            # the app's own middleware (``broker.py``, ``app.py``) changes nothing a handler
            # that returns does, so a call from the local queue skips it; any other keeps
            # the broker
            own = tuple({type(m) for m in middleware(self.app.settings)} | {Quarantine})
            extra = [m for m in self.broker.middleware if not isinstance(m, own)]
            self.via_broker = bool(extra)
        self.worker.start()
        if not self.via_broker:
            self.app.engine.dispatch = self.local
        if self.heads_at_end:
            self._signer, self.app.engine.heads = self.app.engine.heads, None
        return self

    def __exit__(self, *_: object) -> None:
        try:
            self.join()
        finally:
            self.worker.stop()
            self.app.engine.dispatch = self._dispatch
            if self._signer is not None:
                self.app.engine.heads, self._signer = self._signer, None

    def sign_heads(self) -> int:
        """Sign and write the head of every chain changed since the last call; how many."""
        if self._signer is None or not self._unsigned:
            return 0
        by_tag: dict[str, list[AuditEntry]] = {}
        for (tag, _), entry in self._unsigned.items():
            by_tag.setdefault(tag, []).append(entry)
        keys = self.app.store.keys
        rows = [
            row
            for tag, entries in by_tag.items()
            for row in head_rows(keys, tag, self._signer, entries)
        ]
        self.app.store.commit({"hsets": rows}, [])
        signed, self._unsigned = len(self._unsigned), {}
        return signed

    def _join_broker(self) -> None:
        queues = self.app.queue_names()
        while True:
            for name in queues:
                self.broker.join(name, fail_fast=True)
            if all(self.broker.queues[n].unfinished_tasks == 0 for n in queues):
                return

    def join(self) -> None:
        """Run or wait for every stage's work until none is left (follow-up work included),
        then sign the heads of the chains it changed."""
        self._settle()
        self.sign_heads()

    def _settle(self) -> None:
        while True:
            if self.local.drain() and not self._broker_busy():
                return
            self._join_broker()  # what failed here, or was sent to the broker directly

    def _broker_busy(self) -> bool:
        queues = self.broker.queues
        return any(q.unfinished_tasks for q in queues.values())

    def _send(self, actor: str, *args: Any) -> None:
        if self.via_broker:
            self.app.actors[actor].send(*args)
        else:
            self.local.send(actor, *args)

    def fire_due(self, until: datetime) -> int:
        """Fire every timer due at or before ``until``, one at a time, in due order."""
        fired = 0
        limit = int(until.timestamp() * 1000)
        due = self._due
        while due and due[0][0] <= limit:
            score, member = heapq.heappop(due)
            self._queued.discard(member)
            if not self.app.store.timer_pending(member):
                continue  # fired already (added again by the commit that removed it)
            self.clock.advance_to(datetime.fromtimestamp(score / 1000, tz=until.tzinfo))
            self._send("fire_timer", member)
            self._settle()
            fired += 1
        return fired

    def line(self, number: int, raw: str) -> None:
        """Publish one line of the file at its time (bad lines go to quarantine)."""
        if not raw.strip():
            return
        try:
            event = parse_event(raw, self.limits)
        except InvalidEvent as exc:
            self.app.reject(raw, exc, number)
            return
        self.fire_due(event.time)
        self.clock.advance_to(event.time)
        publish(event, sender=self._sender(number))
        self._settle()

    def _sender(self, number: int) -> DramatiqSender:
        if self.via_broker:
            return DramatiqSender(self.app, number)
        same = self.app.engine.limits == self.limits  # the handler's parse would agree
        return _LocalSender(self.app, number, self.local, self.limits if same else None)

    def run(
        self,
        lines: Iterable[str],
        *,
        until: datetime | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, Any]:
        # What a year leaves in memory (the fake store's keys, their values) lives to the
        # end, yet the cyclic collector walks it again at each full collection, more each
        # time: frozen every _FREEZE_EVERY lines, it is left out (about 6% of a year's time).
        # Refcounting still frees what is dropped; all goes back to the collector at the end.
        freeze = gc.isenabled() and gc.get_freeze_count() == 0  # not if the host froze any
        try:
            for number, raw in enumerate(lines, start=1):
                self.line(number, raw)
                if progress:
                    progress(number)
                if freeze and number % _FREEZE_EVERY == 0:
                    gc.freeze()
            if until is not None:
                self.fire_due(until)
                self.clock.advance_to(until)
            self.join()
            return build_report(self.app.store)
        finally:
            if freeze:
                gc.unfreeze()
