"""Evidence: the words behind a case, kept apart from the audit (E4).

The audit holds ids and content hashes; the text of posts, complaints,
allegations and appeals and the notes of review decisions live here, one Redis
hash per case under ``<prefix>:ev:`` (an ACL fences that key space off from
readers, producers and, for reading, the workers). Each item is written by the
same atomic commit as the decision its event caused, so a case never lacks the
evidence of a step, and a redelivered event writes nothing twice.

Retention (``[retention]`` of the policy): a case's evidence is removed
``days[kind]`` after the case closes, by :meth:`EvidenceStore.sweep`, which the
workers run on a schedule (:class:`RetentionSweeper`); a member's erasure
request removes the evidence of their closed post and appeal cases once the
hold has passed, and refuses, with the reason, for a case still open. Viewing,
erasing and expiring each write an audit entry on the case's own chain (who,
when, how many items: never the words), signed like every other commit, so the
chain still verifies after the text is gone.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dramatiq
import structlog

from ..events.envelope import Event
from ..events.errors import CaseNotFound, ConflictError
from ..events.models import (
    AllegationReported,
    AppealLodged,
    CaseReviewed,
    ComplaintReceived,
    PostSubmitted,
)
from ..workflows.audit import text_hash
from ..workflows.ids import CaseKind, State
from ..workflows.model import AuditEntry, Case, Decision, Member
from ..workflows.policy import Policy
from ..workflows.steps import Builder, derive_id, iso
from .clock import Clock
from .keys import Keys
from .signing import HeadSigner, LazyHeadSigner, head_rows
from .store import RedisStore

__all__ = [
    "ERASABLE_KINDS",
    "Erasure",
    "EvidenceStore",
    "RetentionSweeper",
    "closed_rows",
    "evidence_rows",
]

log = structlog.get_logger("esafety.evidence")
audit_log = structlog.get_logger("esafety.audit")

#: case kinds whose evidence is the member's own words (what an erasure request covers)
ERASABLE_KINDS = (CaseKind.POST, CaseKind.APPEAL)
_RETAINED_KINDS = (CaseKind.POST, CaseKind.COMPLAINT, CaseKind.ALLEGATION, CaseKind.APPEAL)


def _item(event: Event) -> tuple[str, str, str] | None:
    """(kind, author ref, text) of the content an event carries, if any."""
    data = event.data
    if isinstance(data, PostSubmitted):
        return "post_text", data.member_id, data.text
    if isinstance(data, ComplaintReceived):
        return "complaint_text", data.complainant_ref, data.text
    if isinstance(data, AllegationReported) and data.text:
        return "allegation_text", data.reporter_ref, data.text
    if isinstance(data, AppealLodged) and data.text:
        return "appeal_text", data.member_id, data.text
    if isinstance(data, CaseReviewed) and data.note:
        return "review_note", data.reviewer_ref, data.note
    return None


def evidence_rows(keys: Keys, tag: str, event: Event, decision: Decision) -> list[list[str]]:
    """The ``hsets`` that keep an event's text as evidence of the case it changed."""
    found = _item(event)
    if found is None or decision.noop or decision.case is None:
        return []
    kind, by, text = found
    item = {
        "kind": kind,
        "event_id": event.id,
        "source": event.source,
        "at": iso(event.time),
        "by": by,
        "sha256": text_hash(text),
        "text": text,
    }
    item_id = derive_id("ev", event.source, event.id)
    case_id = decision.case.case_id
    return [[keys.evidence(tag, case_id), item_id, json.dumps(item, ensure_ascii=False)]]


def closed_rows(
    keys: Keys, decision: Decision, before: Case | None, now: datetime
) -> list[list[Any]]:
    """The ``zadds`` that start a case's retention period when it closes."""
    case = decision.case
    if case is None or case.state is not State.CLOSED or case.kind not in _RETAINED_KINDS:
        return []
    if before is not None and before.state is State.CLOSED:
        return []
    return [[keys.evidence_closed(case.kind.value), int(now.timestamp() * 1000), case.case_id]]


@dataclass
class Erasure:
    """What an erasure request did: erased cases, refusals with reasons, cases kept."""

    member_id: str
    erased: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id,
            "erased": self.erased,
            "refused": [{"case_id": c, "reason": r} for c, r in self.refused],
            "kept": [{"case_id": c, "reason": r} for c, r in self.kept],
        }


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(value: float) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


@dataclass
class EvidenceStore:
    """Reads, views, erases and expires evidence; each change is audited and signed."""

    store: RedisStore
    policy: Policy
    clock: Clock
    signer: HeadSigner | LazyHeadSigner
    conflict_retries: int = 20

    def _key(self, case: Case) -> str:
        return self.store.keys.evidence(case.tag, case.case_id)

    def _archive_key(self, case: Case) -> str:
        """The event archive's copy of a case's texts (``workers/archive.py``), erased too."""
        return f"{self.store.keys.prefix}:ev:archive:{case.case_id}"

    def items(self, case: Case) -> list[dict[str, Any]]:
        raw = self.store.client.hgetall(self._key(case))
        items = [json.loads(v) for v in raw.values()]
        return sorted(items, key=lambda i: (i.get("at", ""), i.get("event_id", "")))

    def _case(self, case_id: str) -> Case:
        found = self.store.case(case_id)
        if found is None:
            raise CaseNotFound(case_id)
        return found

    def view(self, case_id: str, by: str) -> tuple[Case, list[dict[str, Any]]]:
        """A case's evidence for a lead, after an audit entry records who viewed it."""
        case = self._case(case_id)
        items = self.items(case)
        self._step(
            case_id,
            "evidence_viewed",
            f"human:{by}",
            {"items": len(items), "viewed_by": by},
            op=f"view:{uuid.uuid4()}",
        )
        return case, items

    def _closed_at(self, case: Case) -> datetime | None:
        score = self.store.client.zscore(
            self.store.keys.evidence_closed(case.kind.value), case.case_id
        )
        if score is not None:
            return _from_ms(score)
        closing = [e for e in self.store.audit(case.case_id, case.tag) if e.to == "closed"]
        return datetime.fromisoformat(closing[-1].at.replace("Z", "+00:00")) if closing else None

    def _refusal(self, case: Case, now: datetime) -> str | None:
        if case.state is not State.CLOSED:
            return f"the case is open ({case.state.value}); its evidence is kept until it closes"
        closed = self._closed_at(case) or now
        held = closed + self.policy.retention.hold_for(case.kind.value)
        if now < held:
            days = self.policy.retention.hold_days.get(case.kind.value, 0)
            rule = f"retention.hold_days.{case.kind} = {days:g}"
            return f"retention holds it until {iso(held)} ({rule})"
        return None

    def _has_evidence(self, case: Case) -> bool:
        return bool(self.store.client.exists(self._key(case), self._archive_key(case)))

    def erase_member(self, member_id: str, by: str) -> Erasure:
        """Remove a member's own words where retention allows; say why where it does not."""
        result = Erasure(member_id)
        now = self.clock.now()
        for case in self.store.cases():
            if case.member_id != member_id:
                continue
            if case.kind not in ERASABLE_KINDS:
                result.kept.append((case.case_id, f"a {case.kind} is not their own words"))
                continue
            refusal = self._refusal(case, now)
            if refusal is not None:
                result.refused.append((case.case_id, refusal))
                continue
            if self._erase(case, by, now):
                result.erased.append(case.case_id)
        return result

    def _erase(self, case: Case, by: str, now: datetime) -> bool:
        items = len(self.items(case))
        if not items and not self._has_evidence(case):
            return False
        self._step(
            case.case_id,
            "evidence_erased",
            f"human:{by}",
            {"items": items, "reason": "erasure_request", "member_id": case.member_id},
            op=f"erase:{case.case_id}:{_ms(now)}",
            dels=[self._key(case), self._archive_key(case)],
        )
        return True

    def sweep(self, limit: int = 500) -> int:
        """Remove evidence past its retention period; returns how many cases were swept."""
        now, swept = self.clock.now(), 0
        for kind in _RETAINED_KINDS:
            key = self.store.keys.evidence_closed(kind.value)
            cutoff = now - self.policy.retention.keep_for(kind.value)
            due = self.store.client.zrangebyscore(key, "-inf", _ms(cutoff), start=0, num=limit)
            for raw in due:
                case_id = raw.decode() if isinstance(raw, bytes) else str(raw)
                swept += self._expire(kind, case_id, key)
        return swept

    def sweep_quarantine(self, limit: int = 500) -> int:
        """Remove quarantined input's bytes past ``retention.quarantine_days``; how many."""
        from .quarantine import QuarantineBox

        cutoff = self.clock.now() - self.policy.retention.quarantine_for()
        return QuarantineBox(self.store).expire_raw(cutoff, limit)

    def _expire(self, kind: CaseKind, case_id: str, index: str) -> int:
        case = self.store.case(case_id)
        if case is None or case.state is not State.CLOSED:
            self.store.client.zrem(index, case_id)
            return 0
        self._step(
            case_id,
            "evidence_expired",
            "system:retention",
            {"retention_days": f"{self.policy.retention.keep_for(kind.value).days}"},
            op=f"expire:{case_id}",
            dels=[self._key(case), self._archive_key(case)],
            zrems=[[index, case_id]],
        )
        return 1

    def _step(
        self,
        case_id: str,
        trigger: str,
        actor: str,
        detail: dict[str, Any],
        *,
        op: str,
        dels: Iterable[str] = (),
        zrems: Iterable[list[str]] = (),
    ) -> None:
        """One audit entry on the case's chain, with its changes, in one signed commit."""
        for _ in range(self.conflict_retries):
            case = self._case(case_id)
            plan, entry = self._plan(case, trigger, actor, detail, op)
            plan["dels"] = [[k] for k in dels]
            plan["zrems"] = [list(z) for z in zrems]
            result = self.store.commit(plan, [check[0] for check in plan["checks"]])
            if result.status == "conflict":
                continue
            if result.status == "ok":
                audit_log.info("audit.step", **entry.as_dict())
            return
        raise ConflictError(self.store.keys.case(self._case(case_id).tag, case_id))

    def _shared(self, case: Case) -> Member | None:
        """The member whose status history shares this case's chain: a request to leave
        (S4) is the case ``member:<id>`` and writes on the member's own chain, which the
        member's later steps (an overturn, a reinstatement) carry on."""
        if not case.case_id.startswith("member:") or case.member_id is None:
            return None
        member = self.store.member(case.member_id)
        return member if member is not None and member.chain_id == case.case_id else None

    def _plan(
        self, case: Case, trigger: str, actor: str, detail: dict[str, Any], op: str
    ) -> tuple[dict[str, Any], AuditEntry]:
        k, tag, now = self.store.keys, case.tag, self.clock.now()
        b = Builder(self.policy, now, ("evidence", op), actor, case=case)
        state = case.state.value
        member = self._shared(case)
        # a shared chain goes on from whichever record saw its last entry: never a fork
        last = member if member is not None and member.seq > case.seq else case
        b.entry(
            case.case_id,
            seq=last.seq,
            head=last.head,
            from_state=state,
            to_state=state,
            trigger=trigger,
            clauses=("E4",),
            detail=detail,
        )
        entry = b.audit[-1]
        position = {"seq": entry.seq, "head": entry.hash}
        updated = case.model_copy(update={**position, "version": case.version + 1})
        plan: dict[str, Any] = {
            "seen": k.seen(tag, "evidence", op),
            "checks": [[k.case(tag, case.case_id), case.version]],
            "sets": [[k.case(tag, case.case_id), updated.model_dump_json(by_alias=True)]],
            "xadds": [[k.audit(tag, case.case_id), entry.model_dump_json(by_alias=True)]],
            "hsets": [[k.chains, case.case_id, tag], *head_rows(k, tag, self.signer, [entry])],
            "result": json.dumps({"tag": tag, "effects": [], "timers": [], "commands": []}),
        }
        if member is not None:  # both records move to the chain's new head, checked
            moved = member.model_copy(update={**position, "version": member.version + 1})
            plan["checks"].append([k.member(tag, member.member_id), member.version])
            plan["sets"].append(
                [k.member(tag, member.member_id), moved.model_dump_json(by_alias=True)]
            )
        return plan, entry


class RetentionSweeper(dramatiq.Middleware):  # type: ignore[misc]
    """The scheduled job: every worker process sweeps expired evidence every ``interval`` s.

    Sweeps are idempotent (each expiry is one keyed commit), so several processes
    sweeping at once remove each case's evidence once and audit it once.
    """

    def __init__(self, evidence: EvidenceStore, interval: float) -> None:
        self.evidence = evidence
        self.interval = interval
        self.join_timeout = 30.0  # a sweep is one keyed commit per expired case
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="esafety-retention", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Stop, and wait for a sweep under way: nothing of it (a commit, a log line) may
        land after shutdown, in whatever the process has configured by then."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=self.join_timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                swept = self.evidence.sweep()
                bytes_removed = self.evidence.sweep_quarantine()
            except Exception as exc:  # a lost connection must not end the schedule
                log.warning("evidence.sweep_failed", error=type(exc).__name__)
                continue
            if swept:
                log.info("evidence.swept", cases=swept)
            if bytes_removed:
                log.info("quarantine.bytes_expired", entries=bytes_removed)
