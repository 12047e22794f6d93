"""The builder a decision accumulates its steps in.

Why a builder: every step must write exactly one audit entry that chains to the
previous one and names its effects, and every effect id must be derived from the
event and the step, so a replay gives the same ids. Keeping that bookkeeping in
one place keeps the policy code free of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .audit import GENESIS, entry_hash
from .ids import EffectKind, State, TimerKind
from .machine import step
from .model import AuditEntry, Case, Command, Decision, Effect, Member, Timer
from .policy import Policy

__all__ = ["Builder", "derive_id", "iso"]


def derive_id(prefix: str, *parts: str) -> str:
    """A deterministic id from the event's (source, id) and the step."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return f"{prefix}-{digest[:24]}"


def iso(moment: datetime) -> str:
    """``%Y-%m-%dT%H:%M:%SZ``, formatted by hand: ``strftime`` was a tenth of a replay's time."""
    m = moment
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"


@dataclass
class _Chain:
    seq: int
    head: str
    state: str


@dataclass
class Builder:
    """Accumulates one decision's steps for one event, timer or command."""

    policy: Policy
    now: datetime
    origin: tuple[str, str]
    actor: str
    case: Case | None = None
    member: Member | None = None
    audit: list[AuditEntry] = field(default_factory=list)
    effects: list[Effect] = field(default_factory=list)
    timers: list[Timer] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    _chains: dict[str, _Chain] = field(default_factory=dict)
    event_time: datetime | None = None
    #: False for a what-if replay, which compares outcomes and needs no audit trail: the
    #: steps are taken and counted (seq) but no entry is written or hashed (heads stay "")
    record: bool = True
    steps: int = 0

    @property
    def event_id(self) -> str:
        return self.origin[1]

    @property
    def start(self) -> datetime:
        """When a period the step starts counts from: the event's time, as deadlines do."""
        return self.event_time or self.now

    # -- ids -------------------------------------------------------------
    def derive(self, prefix: str, *step_parts: str) -> str:
        return derive_id(prefix, *self.origin, *step_parts)

    def effect(
        self,
        kind: EffectKind,
        recipient: str,
        *,
        case_id: str,
        clauses: Iterable[str] = (),
        detail: dict[str, str] | None = None,
        key: str = "",
    ) -> Effect:
        effect = Effect(
            effect_id=self.derive("eff", case_id, kind.value, recipient, key),
            kind=kind,
            case_id=case_id,
            recipient=recipient,
            clauses=tuple(clauses),
            detail=detail or {},
        )
        self.effects.append(effect)
        return effect

    def timer(
        self, kind: TimerKind, *, tag: str, target: str, due: datetime, level: int = 0
    ) -> Timer:
        timer = Timer(
            timer_id=self.derive("tmr", kind.value, target, str(level)),
            kind=kind,
            tag=tag,
            target=target,
            due=due,
            level=level,
        )
        self.timers.append(timer)
        return timer

    def command(
        self,
        kind: str,
        *,
        tag: str,
        target: str,
        case_id: str,
        detail: dict[str, str] | None = None,
    ) -> Command:
        command = Command(
            command_id=self.derive("cmd", kind, target, case_id),
            kind=kind,
            tag=tag,
            target=target,
            case_id=case_id,
            detail=detail or {},
        )
        self.commands.append(command)
        return command

    # -- audit -----------------------------------------------------------
    def _chain(self, chain_id: str, seq: int, head: str, state: str) -> _Chain:
        if chain_id not in self._chains:
            self._chains[chain_id] = _Chain(seq, head or GENESIS, state)
        return self._chains[chain_id]

    def entry(
        self,
        chain_id: str,
        *,
        seq: int,
        head: str,
        from_state: str,
        to_state: str,
        trigger: str,
        rules: Iterable[str] = (),
        clauses: Iterable[str] = (),
        effects: Iterable[Effect] = (),
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one audit entry to a chain (a case, or a member's history)."""
        chain = self._chain(chain_id, seq, head, from_state)
        self.steps += 1
        if not self.record:
            chain.seq += 1
            chain.head = ""
            chain.state = to_state
            return
        body: dict[str, Any] = {
            "case_id": chain_id,
            "seq": chain.seq + 1,
            "at": iso(self.now),
            "actor": self.actor,
            "event_id": self.event_id,
            "from": chain.state,
            "to": to_state,
            "trigger": trigger,
            "rules": sorted(set(rules)),
            "clauses": sorted(set(clauses)),
            "effects": [
                {"effect_id": e.effect_id, "kind": e.kind.value, "recipient": e.recipient}
                for e in effects
            ],
            "policy_version": self.policy.stamp,
            "detail": detail or {},
            "prev_hash": chain.head,
        }
        body["hash"] = entry_hash(body)
        self.audit.append(AuditEntry.model_validate(body))
        chain.seq += 1
        chain.head = body["hash"]
        chain.state = to_state

    def move(
        self,
        trigger: str,
        *,
        rules: Iterable[str] = (),
        clauses: Iterable[str] = (),
        effects: Iterable[Effect] = (),
        detail: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
    ) -> None:
        """Fire ``trigger`` on the case (checked by the state machine) and audit the step."""
        assert self.case is not None
        case = self.case
        new_state = step(case.state, trigger)
        self.entry(
            case.case_id,
            seq=case.seq,
            head=case.head,
            from_state=case.state.value,
            to_state=new_state.value,
            trigger=trigger,
            rules=rules,
            clauses=clauses,
            effects=effects,
            detail=detail,
        )
        chain = self._chains[case.case_id]
        closing = new_state is State.CLOSED and case.state is not State.CLOSED
        self.case = case.model_copy(
            update={
                "state": new_state,
                "seq": chain.seq,
                "head": chain.head,
                **(
                    {"closed_at": iso(self.start), "closed_from": case.state.value}
                    if closing
                    else {}
                ),
                **(update or {}),
            }
        )

    def member_step(
        self,
        trigger: str,
        *,
        clauses: Iterable[str] = (),
        effects: Iterable[Effect] = (),
        detail: dict[str, Any] | None = None,
        update: dict[str, Any] | None = None,
    ) -> None:
        """Change the member and audit it on the member's own chain."""
        assert self.member is not None
        member = self.member
        updated = member.model_copy(update=update or {})
        info = {"warnings": updated.warnings, **(detail or {})}
        self.entry(
            member.chain_id,
            seq=member.seq,
            head=member.head,
            from_state=member.status.value,
            to_state=updated.status.value,
            trigger=trigger,
            clauses=clauses,
            effects=effects,
            detail=info,
        )
        chain = self._chains[member.chain_id]
        self.member = updated.model_copy(update={"seq": chain.seq, "head": chain.head})

    def in_state(self, *states: State) -> bool:
        return self.case is not None and self.case.state in states

    def build(self, case_before: Case | None, member_before: Member | None) -> Decision:
        """The decision, with each changed aggregate's version bumped once."""
        case = self.case
        if case is not None and case != case_before:
            case = case.model_copy(
                update={"version": (case_before.version if case_before else 0) + 1}
            )
        elif case is not None:
            case = None
        member = self.member
        if member is not None and member != member_before:
            base = member_before.version if member_before else 0
            member = member.model_copy(update={"version": base + 1})
        elif member is not None:
            member = None
        return Decision(
            case=case,
            member=member,
            audit=tuple(self.audit),
            effects=tuple(self.effects),
            timers=tuple(self.timers),
            commands=tuple(self.commands),
            noop=not self.steps,
        )
