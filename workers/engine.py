"""The actors' bodies: read, decide, commit, dispatch. One stage per queue.

Every body is idempotent, because dramatiq delivers at least once: a commit is
keyed by the event's (source, id) (or the timer's, or the command's id), and a
redelivered message replays the dispatch of what was already committed instead
of deciding again. Bad input is quarantined with its raw bytes; a version
conflict is retried from a fresh read.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import structlog

from ..events.envelope import Event, parse_event
from ..events.errors import CaseNotFound, ConflictError, DecisionRefused, ForgedEvent, InvalidEvent
from ..events.limits import Limits
from ..events.models import CaseReviewed, GuardianRegistered
from ..events.signing import SignatureCheck, verify_payload
from ..workflows.decide import decide, decide_command, decide_register, decide_timer
from ..workflows.ids import TimerKind
from ..workflows.model import AuditEntry, Case, Command, Decision, Timer, member_tag
from ..workflows.policy import Policy
from ..workflows.routing import Route, route
from ..workflows.steps import iso
from .archive import archive_ops
from .clock import Clock
from .directory import contact_writes
from .evidence import closed_rows, evidence_rows
from .notifier import Notifier
from .signing import HeadSigner, LazyHeadSigner, head_rows
from .store import CommitResult, Loaded, RedisStore

__all__ = ["QUEUES", "Dispatch", "Engine", "Observer"]

QUEUES = ("events", "timers", "commands", "deliveries")
log = structlog.get_logger("esafety.engine")
audit_log = structlog.get_logger("esafety.audit")


class Dispatch(Protocol):
    """How the engine hands work to the next stage (dramatiq actors, set by the app)."""

    def deliver(self, tag: str, effect_ids: list[str]) -> None: ...
    def schedule(self, timer_json: str, timer: Timer) -> None: ...
    def command(self, command_json: str) -> None: ...


class Observer(Protocol):
    """Who is told what the engine did, for metrics (``workers/metrics.py``).

    Called after the commit it reports, with the counters the store keeps
    (accepted, duplicates, quarantined); it never changes what the engine does.
    """

    def counted(self, counter: str) -> None: ...
    def committed(self, decision: Decision, before: Case | None) -> None: ...


def _state_moves(key: str, before: Case | None, after: Case | None) -> list[list[Any]]:
    """Cases by state (``esafety status``), counted in the same atomic commit."""
    old = before.state.value if before else None
    new = after.state.value if after else old
    if old == new:
        return []
    return ([[key, old, -1]] if old else []) + ([[key, new, 1]] if new else [])


def _log_audit(entries: tuple[AuditEntry, ...]) -> None:
    """One structlog line a committed audit entry (DESIGN, "Audit log"); each entry's
    fields are gathered only when the configured level lets its line out."""
    bound = audit_log.bind()  # the logger as configured now (a test may capture it)
    enabled = getattr(bound, "is_enabled_for", None)
    if enabled is not None and not enabled(logging.INFO):
        return
    for entry in entries:
        bound.info("audit.step", **entry.as_dict())


def _extend(plan: dict[str, Any], extra: dict[str, list[list[Any]]]) -> None:
    """Add writes to a commit plan (after the decision's own)."""
    for name, ops in extra.items():
        plan[name] = [*plan.get(name, []), *ops]


@dataclass
class Engine:
    store: RedisStore
    policy: Policy
    clock: Clock
    notifier: Notifier
    limits: Limits = field(default_factory=Limits)
    conflict_retries: int = 20
    not_found_retries: int = 6
    dispatch: Dispatch | None = None
    retries_of_current: Callable[[], int] = lambda: 0
    on_commit: Callable[[str, Decision], None] | None = None
    observer: Observer | None = None
    heads: HeadSigner | LazyHeadSigner | None = None
    signatures: SignatureCheck | None = None
    #: bodies whose event is already parsed, by whoever produced the body from that event
    #: with ``encode_event`` (``process``: it parses each line to publish it); a body found
    #: here is taken out and not parsed again (its signature, if any, is still checked)
    preparsed: dict[str, Event] = field(default_factory=dict)

    # -- events ---------------------------------------------------------------
    def handle_event(self, body: str, line: int | None = None) -> str:
        """Actor ``handle_event``: returns what happened (ok, dup, quarantined, retry)."""
        event = self.preparsed.pop(body, None) if self.preparsed else None
        if self.signatures is not None and self.signatures.active:
            try:
                verify_payload(body, self.signatures, self.limits.max_payload_bytes)
            except ForgedEvent as exc:
                return self._quarantine_forged(body, exc, line)
        if event is None:
            try:
                event = parse_event(body, self.limits)
            except InvalidEvent as exc:
                return self._quarantine(body, str(exc), line, exc.event_id)
        try:
            return self._retrying(lambda: self._event(event))
        except DecisionRefused as exc:
            return self._quarantine(body, str(exc), line, event.id, origin=(event.source, event.id))
        except CaseNotFound as exc:
            if self.retries_of_current() < self.not_found_retries:
                raise
            return self._quarantine(
                body, f"{exc} (after retries)", line, event.id, origin=(event.source, event.id)
            )

    def _retrying(self, attempt: Callable[[], CommitResult | None]) -> str:
        for _ in range(self.conflict_retries):
            result = attempt()
            if result is None:
                return "ok"
            if result.status != "conflict":
                self._dispatch(result)
                return result.status
        raise ConflictError("(retries exhausted)")

    def _quarantine(
        self,
        body: str,
        error: str,
        line: int | None,
        event_id: str | None,
        origin: tuple[str, str] | None = None,
    ) -> str:
        dedup = hashlib.sha256(
            ("\x1f".join(origin) if origin else body).encode("utf-8", "surrogatepass")
        ).hexdigest()
        kept = self.store.quarantine(
            raw=body.encode("utf-8", "surrogatepass"),
            error=error,
            stage="consume",
            at=self.clock.now(),
            line=line,
            event_id=event_id,
            dedup=dedup,
        )
        if kept and self.observer:
            self.observer.counted("quarantined")
        log.warning("event.quarantined", event_id=event_id, reason=error, line=line)
        return "quarantined"

    def _load_for(self, event: Event, r: Route) -> Loaded:
        tag = r.tag or (self.store.tag_of(r.case_id) if r.case_id else None)
        if tag is None:
            raise CaseNotFound(r.case_id or "?")
        loaded = self.store.load(
            tag,
            case_id=r.case_id,
            member_id=r.member_id,
            linked_case=r.linked_case,
            children=r.children,
        )
        if isinstance(event.data, CaseReviewed) and loaded.case is not None:
            case = loaded.case
            member_id = (
                case.member_id if case.member_id and tag == member_tag(case.member_id) else None
            )
            if member_id or case.children:
                loaded = self.store.load(
                    tag,
                    case_id=r.case_id,
                    member_id=member_id,
                    linked_case=None,
                    children=case.children,
                )
        return loaded

    def _event(self, event: Event) -> CommitResult | None:
        r = route(event)
        if r.register_child is not None:
            return self._register(event, r.register_child)
        loaded = self._load_for(event, r)
        try:
            decision = decide(
                loaded.case,
                event,
                self.policy,
                loaded.registers,
                self.clock.now(),
                member=loaded.member,
                linked=loaded.linked,
            )
        except DecisionRefused:
            previous = self._redelivered(event, loaded)
            if previous is None:
                raise
            return previous
        return self._commit(
            decision,
            loaded,
            (event.source, event.id),
            counter="duplicates" if decision.noop else "accepted",
            extra=None if decision.noop else self._archived(event, decision),
            event=event,
        )

    def _redelivered(self, event: Event, loaded: Loaded) -> CommitResult | None:
        """A refused event that was committed before: a redelivery, not a refusal.

        A worker killed after a review's commit and before its acknowledgement gets
        the review back once the case may have moved on (closed by the next review):
        deciding again refuses it, though it was accepted. Its commit's record says
        what to dispatch (the referral it made, still to deliver), and it counts as
        the duplicate it is, never as a quarantined event.
        """
        previous = self.store.previous(self.store.keys.seen(loaded.tag, event.source, event.id))
        if previous is not None and self.observer:
            self.observer.counted("duplicates")
        return previous

    def _archived(self, event: Event, decision: Decision | None) -> dict[str, list[list[Any]]]:
        """The event archive's writes (issue 10), in the same commit as the decision."""
        return archive_ops(self.store.keys.prefix, event, decision, self.policy.stamp)

    def _register(self, event: Event, child_id: str) -> CommitResult:
        tag = f"c:{child_id}"
        record = self.store.register(child_id)
        updated = decide_register(event, record)
        plan = self.store.register_plan(
            updated,
            tag=tag,
            expected=record.version if record else 0,
            seen=self.store.keys.seen(tag, event.source, event.id),
            origin=(event.source, event.id),
        )
        if isinstance(event.data, GuardianRegistered):  # contacts: their own hash (E4)
            plan["hsets"] = contact_writes(self.store.keys.prefix, event.data.guardians)
        _extend(plan, self._archived(event, None))
        result = self.store.commit(plan, [self.store.keys.register(tag)])
        if self.observer and result.status != "conflict":
            self.observer.counted("accepted" if result.status == "ok" else "duplicates")
        return result

    # -- commit and dispatch ------------------------------------------------------
    def _commit(
        self,
        decision: Decision,
        loaded: Loaded,
        origin: tuple[str, ...],
        counter: str | None,
        extra: dict[str, Any] | None = None,
        event: Event | None = None,
    ) -> CommitResult:
        keys = self.store.keys
        checks: list[list[Any]] = []
        if loaded.case is not None or decision.case is not None:
            case_id = (decision.case or loaded.case).case_id  # type: ignore[union-attr]
            checks.append(
                [keys.case(loaded.tag, case_id), loaded.case.version if loaded.case else 0]
            )
        if loaded.member is not None or decision.member is not None:
            member_id = (decision.member or loaded.member).member_id  # type: ignore[union-attr]
            checks.append(
                [keys.member(loaded.tag, member_id), loaded.member.version if loaded.member else 0]
            )
        plan = self.store.decision_plan(
            decision,
            tag=loaded.tag,
            seen=keys.seen(loaded.tag, *origin),
            checks=checks,
            counter=counter,
            indexed=(
                loaded.case.case_id if loaded.case else None,
                loaded.member.member_id if loaded.member else None,
            ),
            origin=(event.source, event.id) if event is not None else None,
        )
        _extend(plan, extra or {})
        _extend(plan, self._protected(decision, loaded, event))
        plan["hincrs"] += _state_moves(keys.case_states, loaded.case, decision.case)
        result = self.store.commit(plan, [c[0] for c in checks])
        if result.status == "dup" and result.result.get("reused"):
            log.warning("event.id_reused", event_id=origin[-1], tag=loaded.tag)
        if result.status == "ok":
            if decision.audit:
                _log_audit(decision.audit)
            if self.on_commit:
                self.on_commit(loaded.tag, decision)
        if self.observer:
            self._observe(result.status, counter, decision, loaded.case)
        return result

    def _protected(
        self, decision: Decision, loaded: Loaded, event: Event | None
    ) -> dict[str, list[list[Any]]]:
        """Issue 9, in the same commit: each changed chain's signed head, the event's text
        as evidence, the start of a closed case's retention (signing.py, evidence.py)."""
        keys, tag = self.store.keys, loaded.tag
        hsets = head_rows(keys, tag, self.heads, decision.audit) if self.heads else []
        if event is not None:
            hsets += evidence_rows(keys, tag, event, decision)
        return {"hsets": hsets, "zadds": closed_rows(keys, decision, loaded.case, self.clock.now())}

    def _quarantine_forged(self, body: str, exc: ForgedEvent, line: int | None) -> str:
        """A forged or unsigned event: the reason and a hash are kept, never its bytes (E5)."""
        digest = hashlib.sha256(body.encode("utf-8", "surrogatepass")).hexdigest()
        kept = self.store.quarantine(
            raw=b"",
            error=f"{exc}; payload sha256 {digest} (bytes not kept)",
            stage="consume",
            at=self.clock.now(),
            line=line,
            event_id=exc.event_id,
            dedup=digest,
        )
        if kept and self.observer:
            self.observer.counted("quarantined")
        log.warning("event.forged", event_id=exc.event_id, reason=str(exc), sha256=digest)
        return "quarantined"

    def _observe(
        self, status: str, counter: str | None, decision: Decision, before: Case | None
    ) -> None:
        assert self.observer is not None
        if status == "ok":
            self.observer.committed(decision, before)
        if counter and status != "conflict":
            self.observer.counted(counter if status == "ok" else "duplicates")

    def _dispatch(self, result: CommitResult) -> None:
        if self.dispatch is None:
            return
        tag = result.result.get("tag", "")
        if result.result.get("effects"):
            self.dispatch.deliver(tag, list(result.result["effects"]))
        for raw in result.result.get("timers", []):
            self.dispatch.schedule(raw, Timer.model_validate_json(raw))
        for raw in result.result.get("commands", []):
            self.dispatch.command(raw)

    # -- timers and commands ---------------------------------------------------------
    def fire_timer(self, timer_json: str) -> str:
        """Actor ``fire_timer``: a deadline is due; a stale one changes nothing."""
        timer = Timer.model_validate_json(timer_json)

        def attempt() -> CommitResult:
            if timer.kind is TimerKind.SUSPENSION_EXPIRY:
                loaded = self.store.load(
                    timer.tag, case_id=None, member_id=timer.target, linked_case=None, children=()
                )
            else:
                loaded = self.store.load(
                    timer.tag, case_id=timer.target, member_id=None, linked_case=None, children=()
                )
            decision = decide_timer(
                timer, self.policy, self.clock.now(), case=loaded.case, member=loaded.member
            )
            return self._commit(
                decision,
                loaded,
                ("timer", timer.timer_id),
                counter=None,
                extra={"zrems": [[self.store.keys.timers, timer_json]]},
            )

        return self._retrying(attempt)

    def apply_command(self, command_json: str) -> str:
        """Actor ``apply_command``: a change sent by another aggregate's decision."""
        command = Command.model_validate_json(command_json)

        def attempt() -> CommitResult:
            if command.kind == "overturn":
                loaded = self.store.load(
                    command.tag,
                    case_id=None,
                    member_id=command.target,
                    linked_case=None,
                    children=(),
                )
            else:
                first = self.store.load(
                    command.tag,
                    case_id=command.target,
                    member_id=None,
                    linked_case=None,
                    children=(),
                )
                member_id = first.case.member_id if first.case else None
                loaded = self.store.load(
                    command.tag,
                    case_id=command.target,
                    member_id=member_id,
                    linked_case=None,
                    children=(),
                )
            decision = decide_command(
                command, self.policy, self.clock.now(), case=loaded.case, member=loaded.member
            )
            return self._commit(decision, loaded, ("command", command.command_id), counter=None)

        return self._retrying(attempt)

    # -- delivery ----------------------------------------------------------------------
    def deliver(self, tag: str, effect_ids: list[str]) -> int:
        """Actor ``deliver``: send each effect once, by id; returns how many were sent now."""
        sent, failed = 0, None
        for effect_id in effect_ids:
            if self.store.is_delivered(tag, effect_id):
                continue
            effect = self.store.effect(tag, effect_id)
            if effect is None:
                log.error("outbox.missing", tag=tag, effect_id=effect_id)
                continue
            try:
                self.notifier.deliver(effect, delivered_at=iso(self.clock.now()))
            except Exception as exc:  # one notice that cannot go must not hold back a DSL alert
                log.warning("notice.deferred", effect_id=effect_id, error=type(exc).__name__)
                failed = failed or exc
                continue
            self.store.mark_delivered(tag, effect_id)
            sent += 1
        if failed is not None:
            raise failed  # retried with backoff: only the effects not yet delivered
        return sent
