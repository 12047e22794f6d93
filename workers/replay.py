"""Replay: archived events through the pure ``decide()`` under another policy, in memory.

Why: a lead who changes a threshold or a word list should see what the change
would have done to last year's cases before making it (E6). The replay runs the
archive on a virtual clock exactly as ``process`` does (each event at its time, the
clock never going back, every timer due at or before an event fired first in due
order, with ``decide_timer``; commands applied after the decision that sent them,
with ``decide_command``), but on plain dicts: nothing is written to the live store
and nothing is sent.

Two things keep it fast without changing any result:

- screening is reused: an event's text matches recorded in the archive stand for
  screening its text again when the recorded policy's screening is the one being
  replayed (the same rules, word lists, links, personal-information and spam
  settings); an event whose text retention has erased replays with them whatever
  the policy, and the result counts how many it had to treat that way. Otherwise
  ``decide()`` screens the text itself, exactly as the engine does;
- a post whose recorded screening found nothing is inert: it closes with
  ``no_action`` and changes nothing else (no effect, timer, command or member
  change), so it is kept as the event alone and decided only if a later event
  reads its case (a complaint about it, a review, an appeal, a command).
  ``full=True`` decides every event; a test checks that both give the same cases,
  members and effects.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..events.envelope import Event
from ..events.errors import CaseNotFound, DecisionRefused
from ..events.models import CaseReviewed, ComplaintReceived, PostSubmitted
from ..workflows.decide import decide, decide_command, decide_register, decide_timer
from ..workflows.ids import Clause, RuleId, TimerKind
from ..workflows.model import Case, Command, Decision, Effect, Member, Timer, member_tag
from ..workflows.policy import Policy
from ..workflows.registers import ChildRecord, Registers
from ..workflows.routing import route
from ..workflows.screening import Confidence, Match, screen_images
from .archive import ArchivedEvent
from .clock import stopwatch
from .replay_diff import case_row, effect_row

__all__ = ["Replay", "ReplayStats", "same_screening"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NO_REGISTERS = Registers()


def same_screening(a: Policy, b: Policy) -> bool:
    """Whether two policies screen text alike (so recorded matches stand for a new screening):
    the same rules, links, personal-information settings and screening data files."""
    fields = ("rules", "links", "personal_info", "spam", "screening", "files")
    return all(getattr(a, name, None) == getattr(b, name, None) for name in fields)


@dataclass
class ReplayStats:
    """What a replay did, for its report (counts only: no text, no names)."""

    events: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: list[dict[str, str]] = field(default_factory=list)
    timers_fired: int = 0
    commands: int = 0
    erased: int = 0
    erased_unscreened: int = 0
    screening_reused: int = 0
    screened: int = 0
    inert: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        rate = self.events / self.seconds if self.seconds else 0.0
        return {
            "events": self.events,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "refused": len(self.refused),
            "timers_fired": self.timers_fired,
            "commands": self.commands,
            "erased_replayed_with_recorded_screening": self.erased,
            "erased_without_recorded_screening": self.erased_unscreened,
            "screening_reused": self.screening_reused,
            "screened": self.screened,
            "inert_posts": self.inert,
            "seconds": round(self.seconds, 3),
            "events_per_second": round(rate),
            "events_per_cpu_second": round(self.events / self.cpu_seconds)
            if self.cpu_seconds
            else 0,
        }


@dataclass(frozen=True, slots=True)
class _Inert:
    """A post with no match, kept undecided until something reads its case."""

    event: Event
    now: datetime
    registers: Registers


class Replay:
    """One replay of archived events under one policy, on a virtual clock."""

    def __init__(
        self,
        policy: Policy,
        *,
        recorded: Policy | None = None,
        full: bool = False,
        audit: bool = False,
    ) -> None:
        self.policy = policy
        self.full = full
        #: a what-if compares outcomes: the steps are taken without writing audit entries
        self.audit = audit
        #: the policy whose recorded screening may stand for a new one (None: never)
        self.recorded_version = (
            recorded.stamp if recorded is not None and same_screening(recorded, policy) else None
        )
        self.now = _EPOCH
        self.cases: dict[str, Case] = {}
        self.inert: dict[str, _Inert] = {}
        self.members: dict[str, Member] = {}
        self.registers: dict[str, ChildRecord] = {}
        self.effects: dict[str, Effect] = {}
        self.timers: list[tuple[int, str, Timer]] = []
        self.seen: set[tuple[str, str]] = set()
        self.commands: deque[Command] = deque()
        self.stats = ReplayStats()

    # -- the loop -----------------------------------------------------------------
    def run(self, items: Iterable[ArchivedEvent], *, until: datetime | None = None) -> Replay:
        """Replay ``items`` in order; ``until`` moves the clock on after the last one."""
        elapsed, cpu = stopwatch(), stopwatch(cpu=True)
        for item in items:
            self.stats.events += 1
            self.step(item)
        if until is not None:
            self.fire_due(until)
            self._advance(until)
        self.stats.seconds += elapsed()
        self.stats.cpu_seconds += cpu()
        return self

    def step(self, item: ArchivedEvent) -> None:
        event = item.event
        origin = (event.source, event.id)
        if origin in self.seen:
            self.stats.duplicates += 1
            return
        self.fire_due(event.time)
        self._advance(event.time)
        try:
            decision = self._decide(item)
        except (DecisionRefused, CaseNotFound) as exc:
            self.seen.add(origin)
            self.stats.refused.append({"event_id": event.id, "error": str(exc)})
            return
        self.seen.add(origin)
        if decision is None or not decision.noop:
            self.stats.accepted += 1
        else:
            self.stats.duplicates += 1
        if decision is not None:
            self._apply(decision)
            self._drain_commands()

    def _advance(self, moment: datetime) -> None:
        if moment > self.now:
            self.now = moment

    def fire_due(self, until: datetime) -> None:
        """Every timer due at or before ``until``, one at a time, in due order (as ``process``)."""
        limit = int(until.timestamp() * 1000)
        while self.timers and self.timers[0][0] <= limit:
            due, _, timer = heapq.heappop(self.timers)
            origin = ("timer", timer.timer_id)
            if origin in self.seen:
                continue
            self.seen.add(origin)
            self._advance(datetime.fromtimestamp(due / 1000, tz=UTC))
            if timer.kind is TimerKind.SUSPENSION_EXPIRY:
                case, member = None, self._member(timer.tag, timer.target)
            else:
                case, member = self._case(timer.target, tag=timer.tag), None
            decision = decide_timer(
                timer, self.policy, self.now, case=case, member=member, audit=self.audit
            )
            self._apply(decision)
            self.stats.timers_fired += 1
            self._drain_commands()

    # -- reads, as the engine's store.load would give them ----------------------------
    def _case(self, case_id: str | None, *, tag: str | None = None) -> Case | None:
        if case_id is None:
            return None
        if case_id in self.inert:
            self._decide_inert(case_id)
        case = self.cases.get(case_id)
        return case if case is not None and (tag is None or case.tag == tag) else None

    def _member(self, tag: str, member_id: str | None) -> Member | None:
        if member_id is None or tag != member_tag(member_id):
            return None
        return self.members.get(member_id)

    def _registers(self, children: tuple[str, ...]) -> Registers:
        if not children:
            return _NO_REGISTERS
        return Registers(
            {c: self.registers.get(c) or ChildRecord(child_id=c) for c in dict.fromkeys(children)}
        )

    # -- deciding ---------------------------------------------------------------------
    def _decide(self, item: ArchivedEvent) -> Decision | None:
        event = item.event
        r = route(event)
        if r.register_child is not None:
            record = self.registers.get(r.register_child)
            self.registers[r.register_child] = decide_register(event, record)
            return None
        if isinstance(event.data, CaseReviewed):
            return self._review(event)
        if self._case(r.case_id, tag=r.tag) is not None:
            return Decision(noop=True)  # a republished event: its case exists already
        matches = self._text_matches(item)
        registers = self._registers(r.children)
        if (
            isinstance(event.data, PostSubmitted)
            and not self.full
            and matches is not None
            and r.case_id is not None
        ):
            media = event.data.media
            images = screen_images(media, registers, self.policy) if media else []
            if not matches and not images:
                self.inert[r.case_id] = _Inert(event, self.now, registers)
                self.stats.inert += 1
                member_id = event.data.member_id  # the author's record exists from now, as is
                if member_id not in self.members:
                    self.members[member_id] = Member(member_id=member_id, version=1)
                return None
        tag = r.tag or ""
        return decide(
            None,
            event,
            self.policy,
            registers,
            self.now,
            member=self._member(tag, r.member_id),
            linked=self._case(r.linked_case),
            text_matches=matches,
            audit=self.audit,
        )

    def _review(self, event: Event) -> Decision:
        assert isinstance(event.data, CaseReviewed)
        case = self._case(event.data.case_id)
        if case is None:
            raise CaseNotFound(event.data.case_id)
        member = None
        if case.member_id and case.tag == member_tag(case.member_id):
            member = self.members.get(case.member_id)
        registers = self._registers(case.children)
        return decide(
            case, event, self.policy, registers, self.now, member=member, audit=self.audit
        )

    def _decide_inert(self, case_id: str) -> None:
        """Decide a deferred post now that something reads its case (same inputs as then)."""
        held = self.inert.pop(case_id)
        decision = decide(
            None,
            held.event,
            self.policy,
            held.registers,
            held.now,
            text_matches=(),
            audit=self.audit,
        )
        assert decision.case is not None and not decision.effects and not decision.timers
        self.cases[case_id] = decision.case

    def _text_matches(self, item: ArchivedEvent) -> list[Match] | None:
        """The recorded matches for the event's text when they stand (its text erased, or the
        same screening); None when ``decide()`` must screen it (with the author's recent
        posts, as the engine does)."""
        data = item.event.data
        if not isinstance(data, PostSubmitted | ComplaintReceived):
            return None
        recorded = item.screening
        if item.erased:
            if recorded is None:
                self.stats.erased_unscreened += 1
                return []
            self.stats.erased += 1
            return self._recorded(recorded)
        if recorded is not None and item.policy_version == self.recorded_version:
            self.stats.screening_reused += 1
            return self._recorded(recorded)
        self.stats.screened += 1
        return None

    def _recorded(self, recorded: Iterable[dict[str, Any]]) -> list[Match]:
        """Recorded text matches, re-cited under this policy (images are screened anew)."""
        out: list[Match] = []
        for found in recorded:
            if str(found.get("field", "text")).startswith("media."):
                continue
            rule = RuleId(found["rule"])
            entry = self.policy.rules.get(rule)
            if entry is None or not entry.enabled:
                continue
            span = found.get("span", (0, 0))
            out.append(
                Match(
                    rule,
                    tuple(Clause(c) for c in self.policy.clauses_for(rule)),
                    (int(span[0]), int(span[1])),
                    Confidence(found.get("confidence", "clear")),
                    str(found.get("field", "text")),
                )
            )
        return out

    # -- applying ---------------------------------------------------------------------
    def _apply(self, decision: Decision) -> None:
        if decision.case is not None:
            self.cases[decision.case.case_id] = decision.case
        if decision.member is not None:
            self.members[decision.member.member_id] = decision.member
        for effect in decision.effects:
            self.effects[effect.effect_id] = effect
        for timer in decision.timers:
            # ties in due order as the store's index breaks them: by the timer's JSON, whose
            # first field is its id (fixed-length, so the id orders alike)
            heapq.heappush(self.timers, (int(timer.due.timestamp() * 1000), timer.timer_id, timer))
        self.commands.extend(decision.commands)

    def _drain_commands(self) -> None:
        while self.commands:
            command = self.commands.popleft()
            origin = ("command", command.command_id)
            if origin in self.seen:
                continue
            self.seen.add(origin)
            self.stats.commands += 1
            if command.kind == "overturn":
                case, member = None, self._member(command.tag, command.target)
            else:
                case = self._case(command.target, tag=command.tag)
                member = self._member(command.tag, case.member_id if case else None)
            decision = decide_command(
                command, self.policy, self.now, case=case, member=member, audit=self.audit
            )
            self._apply(decision)

    # -- results ----------------------------------------------------------------------
    def case_rows(self) -> Iterator[dict[str, Any]]:
        """Every case as the report's row (a deferred post as what deciding it gives)."""
        for case in self.cases.values():
            yield case_row(case)
        for case_id, held in self.inert.items():
            data = held.event.data
            assert isinstance(data, PostSubmitted)
            yield {
                "case_id": case_id,
                "kind": "post",
                "state": "closed",
                "outcome": "no_action",
                "rules": [],
                "member_id": data.member_id,
            }

    def member_rows(self) -> Iterator[dict[str, Any]]:
        for member in self.members.values():
            yield {
                "member_id": member.member_id,
                "status": member.status.value,
                "warnings": member.warnings,
            }

    def effect_rows(self) -> Iterator[dict[str, Any]]:
        for effect in self.effects.values():
            yield effect_row(effect)

    def pending_timers(self) -> list[Timer]:
        fired = self.seen
        return [t for _, _, t in sorted(self.timers) if ("timer", t.timer_id) not in fired]
