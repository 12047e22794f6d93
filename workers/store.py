"""The Redis store: aggregates, registers, outbox, timers and audit streams.

Every change is one commit plan: the transition, its audit entries and its outbox
rows are written together or not at all, keyed by the event's (source, id), and only
if the aggregates still have the versions that were read. On a real Redis the plan
is one call of ``commit.lua``; embedded, on fakeredis, whose Lua is slow, the same
plan is applied from Python under the fake server's lock (``commit_python.py``,
same contract).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import redis

from ..workflows.model import AuditEntry, Case, Decision, Effect, Member, Timer
from ..workflows.registers import ChildRecord, Registers
from .commit_python import PythonCommit
from .commit_python import available as python_commit_available
from .keys import Keys

__all__ = ["Applier", "CommitResult", "Loaded", "RedisStore", "Store", "on_fakeredis"]

_SCRIPT = (Path(__file__).parent / "scripts" / "commit.lua").read_text()
# KEYS: dedup set, quarantine stream, stats; ARGV: dedup ("" for none), the raw bytes'
# hash (under <prefix>:ev:), the raw bytes ("" for none), then field, value... of the entry.
# The raw bytes go to the evidence key space under the new entry's id, never into the
# stream, in the same script as the entry, the mark and the count. Their key is an
# argument, not a declared key: EVAL needs read and write on every declared key, and the
# producer may only write this one (as commit.lua's evidence keys for the worker).
_QUARANTINE = """
if ARGV[1] ~= "" and redis.call("SADD", KEYS[1], ARGV[1]) == 0 then return 0 end
local id = redis.call("XADD", KEYS[2], "*", unpack(ARGV, 4))
if ARGV[3] ~= "" then redis.call("HSET", ARGV[2], id, ARGV[3]) end
redis.call("HINCRBY", KEYS[3], "quarantined", 1)
return 1
"""


@dataclass(frozen=True, slots=True)
class CommitResult:
    """``status`` is ok, dup or conflict; ``result`` what to dispatch after the commit."""

    status: str
    result: dict[str, Any]
    key: str = ""


@dataclass
class Loaded:
    """What a decision reads: the case, the member, a linked case and the registers."""

    tag: str
    case: Case | None = None
    member: Member | None = None
    linked: Case | None = None
    registers: Registers = field(default_factory=Registers)


class Store(Protocol):
    """The storage port the actors use (RedisStore on Redis and on fakeredis)."""

    keys: Keys

    def tag_of(self, case_id: str) -> str | None: ...
    def load(
        self,
        tag: str,
        *,
        case_id: str | None,
        member_id: str | None,
        linked_case: str | None,
        children: tuple[str, ...],
    ) -> Loaded: ...
    def commit(self, plan: dict[str, Any], keys: list[str]) -> CommitResult: ...
    def previous(self, seen: str) -> CommitResult | None: ...


def _json(model: Any) -> str:
    return str(model.model_dump_json(by_alias=True))


def _timer_member(timer: Timer) -> str:
    return _json(timer)


def on_fakeredis(client: redis.Redis) -> bool:
    """Whether ``client`` is fakeredis's (in this process), without importing fakeredis."""
    fake = sys.modules.get("fakeredis")
    return fake is not None and isinstance(client, (fake.FakeRedis, fake.FakeStrictRedis))


Applier = Literal["lua", "python"]


class RedisStore:
    """The store on one Redis (real or fake); see ``keys.py`` for the layout.

    ``applier`` says how a commit plan is applied: ``"lua"`` (``commit.lua``, atomic on
    any Redis) or ``"python"`` (``commit_python.py``: fakeredis only, in this process).
    The default is the one place that chooses: Python on fakeredis, whose Lua interpreter
    makes the script several ms a commit, the script everywhere else.
    """

    def __init__(
        self, client: redis.Redis, keys: Keys | None = None, *, applier: Applier | None = None
    ) -> None:
        self.client = client
        self.keys = keys or Keys()
        if applier != "lua" and on_fakeredis(client) and python_commit_available(client):
            self.applier: Applier = "python"
        elif applier == "python":
            raise ValueError("the Python commit runs on fakeredis only (on a server: not atomic)")
        else:
            self.applier = "lua"
        self._commit = client.register_script(_SCRIPT)
        self._python_commit = PythonCommit(client) if self.applier == "python" else None
        self._quarantine = client.register_script(_QUARANTINE)

    # -- reads for a decision ---------------------------------------------
    def _together(self, commands: list[list[Any]], *, transaction: bool = False) -> list[Any]:
        """Commands in one round trip: a pipeline; on fakeredis (the Python commit) straight
        to the fake server under its lock, as atomic as MULTI/EXEC, without redis-py's
        encoding and fakeredis's parsing, which cost more there than the commands."""
        if self._python_commit is not None:
            return self._python_commit.run(commands)
        pipe = self.client.pipeline(transaction=transaction)
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute())

    def tag_of(self, case_id: str) -> str | None:
        [value] = self._together([["HGET", self.keys.cases, case_id]])
        return value.decode() if value else None

    def load(
        self,
        tag: str,
        *,
        case_id: str | None,
        member_id: str | None,
        linked_case: str | None,
        children: tuple[str, ...],
    ) -> Loaded:
        linked_tag = self.tag_of(linked_case) if linked_case else None
        wanted = [
            self.keys.case(tag, case_id) if case_id else None,
            self.keys.member(tag, member_id) if member_id else None,
            self.keys.case(linked_tag, linked_case) if linked_tag and linked_case else None,
            *(self.keys.register(f"c:{child}") for child in children),
        ]
        raw = self._get_all(wanted, one_slot=linked_tag is None and not children)
        records = {c: self._child(c, r) for c, r in zip(children, raw[3:], strict=True)}
        return Loaded(
            tag=tag,
            case=Case.model_validate_json(raw[0]) if raw[0] else None,
            member=Member.model_validate_json(raw[1]) if raw[1] else None,
            linked=Case.model_validate_json(raw[2]) if raw[2] else None,
            registers=Registers(records),
        )

    def _get_all(self, wanted: list[str | None], *, one_slot: bool = False) -> list[bytes | None]:
        """GET each key in one round trip; None where there is no key to read.

        One MGET on fakeredis (one command to run, not one a key) and on a server when
        the keys share one hash slot (``one_slot``: an aggregate's case and member, the
        common read), which costs redis-py less than a pipeline; otherwise a pipeline of
        GETs, since the keys may hash to several slots (a linked case, the registers)."""
        present = [key for key in wanted if key is not None]
        if not present:
            return [None] * len(wanted)
        if self._python_commit is not None:
            [found] = self._python_commit.run([["MGET", *present]])
            values = iter(found)
        elif one_slot:
            values = iter(self.client.execute_command("MGET", *present))
        else:
            values = iter(self._together([["GET", key] for key in present]))
        return [next(values) if key is not None else None for key in wanted]

    @staticmethod
    def _child(child_id: str, raw: bytes | None) -> ChildRecord:
        if not raw:
            return ChildRecord(child_id=child_id)
        body = json.loads(raw)
        return ChildRecord(
            child_id=child_id,
            consent=body["consent"],
            consent_at=body.get("consent_at", {}),
            guardians=tuple(body["guardians"]),
            version=body["version"],
        )

    def register(self, child_id: str) -> ChildRecord | None:
        [raw] = self._together([["GET", self.keys.register(f"c:{child_id}")]])
        return self._child(child_id, raw) if raw else None

    def previous(self, seen: str) -> CommitResult | None:
        """What the commit recorded under ``seen`` returned, counted as a duplicate, if
        there was one (a redelivery that can no longer be decided again)."""
        [raw] = self._together([["GET", seen]])
        if raw is None:
            return None
        self._together([["HINCRBY", self.keys.stats, "duplicates", 1]])
        return CommitResult("dup", json.loads(raw))

    # -- the atomic step ---------------------------------------------------
    def commit(self, plan: dict[str, Any], keys: list[str]) -> CommitResult:
        for name in (
            "checks",
            "sets",
            "xadds",
            "hsets",
            "sadds",
            "zadds",
            "zrems",
            "rpushes",
            "hincrs",
            "dup_hincrs",
        ):
            plan.setdefault(name, [])
        plan.setdefault("seen", "")
        plan.setdefault("result", "{}")
        if self._python_commit is not None:
            reply: list[Any] = list(self._python_commit(plan))
        else:
            reply = self._commit(keys=keys, args=[json.dumps(plan, separators=(",", ":"))])
        status = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if status == "dup":
            return CommitResult("dup", json.loads(reply[1]))
        if status == "conflict":
            key = reply[1].decode() if isinstance(reply[1], bytes) else reply[1]
            return CommitResult("conflict", {}, key)
        return CommitResult("ok", json.loads(plan["result"]))

    def decision_plan(
        self,
        decision: Decision,
        *,
        tag: str,
        seen: str,
        checks: list[list[Any]],
        counter: str | None,
        indexed: tuple[str | None, str | None] = (None, None),
        origin: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        """Turn a decision into the commit script's plan (one hash slot plus indexes).

        ``indexed``: the case id and member id read from this tag before deciding, if
        there were such records. The commit that first wrote each also wrote its index
        entry (id -> this tag), which nothing removes, so the plan does not write it again.
        ``origin``: an event's CloudEvents (source, id); the commit records it against this
        tag and is a duplicate if another tag has it (one pair, one event: issue 5).
        """
        k = self.keys
        plan: dict[str, Any] = {
            "seen": seen,
            "checks": checks,
            "sets": [],
            "xadds": [],
            "hsets": [],
            "sadds": [],
            "zadds": [],
            "rpushes": [],
            "hincrs": [],
            "dup_hincrs": [[k.stats, "duplicates", 1]] if counter else [],
        }
        case_indexed, member_indexed = indexed
        if decision.case is not None:
            plan["sets"].append([k.case(tag, decision.case.case_id), _json(decision.case)])
            if decision.case.case_id != case_indexed:
                plan["hsets"].append([k.cases, decision.case.case_id, tag])
        if decision.member is not None:
            plan["sets"].append([k.member(tag, decision.member.member_id), _json(decision.member)])
            if decision.member.member_id != member_indexed:
                plan["hsets"].append([k.members, decision.member.member_id, tag])
        for entry in decision.audit:
            plan["xadds"].append([k.audit(tag, entry.case_id), _json(entry)])
            plan["hsets"].append([k.chains, entry.case_id, tag])
        for effect in decision.effects:
            plan["hsets"].append([k.outbox(tag), effect.effect_id, _json(effect)])
            plan["sadds"].append([k.pending, f"{tag}|{effect.effect_id}"])
            plan["rpushes"].append([k.effects, _json(effect)])
        for timer in decision.timers:
            plan["zadds"].append(
                [k.timers, int(timer.due.timestamp() * 1000), _timer_member(timer)]
            )
        if counter:
            plan["hincrs"].append([k.stats, counter, 1])
        if origin is not None:
            plan["origin"] = self._origin(tag, origin)
        plan["result"] = json.dumps(
            {
                "tag": tag,
                "effects": [e.effect_id for e in decision.effects],
                "timers": [_json(t) for t in decision.timers],
                "commands": [_json(c) for c in decision.commands],
            }
        )
        return plan

    def _origin(self, tag: str, origin: tuple[str, str]) -> list[str]:
        """The plan's ``origin``: the index, the event's (source, id) hashed, its tag."""
        return [self.keys.origins, self.keys.origin(*origin), tag]

    def register_plan(
        self,
        record: ChildRecord,
        *,
        tag: str,
        seen: str,
        expected: int,
        origin: tuple[str, str] | None = None,
    ) -> dict[str, Any]:
        body = {
            "consent": dict(record.consent),
            "consent_at": dict(record.consent_at),
            "guardians": list(record.guardians),
            "version": record.version,
        }
        return {
            "seen": seen,
            **({"origin": self._origin(tag, origin)} if origin else {}),
            "checks": [[self.keys.register(tag), expected]],
            "sets": [[self.keys.register(tag), json.dumps(body, sort_keys=True)]],
            "hincrs": [[self.keys.stats, "accepted", 1]],
            "dup_hincrs": [[self.keys.stats, "duplicates", 1]],
            "result": json.dumps({"tag": tag, "effects": [], "timers": [], "commands": []}),
        }

    # -- outbox -------------------------------------------------------------
    def effect(self, tag: str, effect_id: str) -> Effect | None:
        [raw] = self._together([["HGET", self.keys.outbox(tag), effect_id]])
        return Effect.model_validate_json(raw) if raw else None

    def is_delivered(self, tag: str, effect_id: str) -> bool:
        [member] = self._together([["SISMEMBER", self.keys.delivered(tag), effect_id]])
        return bool(member)

    def mark_delivered(self, tag: str, effect_id: str) -> None:
        self._together(
            [
                ["SADD", self.keys.delivered(tag), effect_id],
                ["SREM", self.keys.pending, f"{tag}|{effect_id}"],
            ],
            transaction=True,
        )

    # -- quarantine ------------------------------------------------------------
    def quarantine(
        self,
        *,
        raw: bytes,
        error: str,
        stage: str,
        at: datetime,
        line: int | None = None,
        event_id: str | None = None,
        dedup: str | None = None,
    ) -> bool:
        """Keep rejected input: its raw bytes and the reason; False if already kept.

        The stream entry holds the reason, stage, time, line, event id, dedup mark and
        the SHA-256 and length of the bytes, never the bytes (it is scanned and listed
        as free of content); the bytes go to ``keys.quarantine_raw`` (evidence key
        space, its ACL) under the entry's id. One script: the dedup mark, the entry, its
        bytes and the count are written together, so a crash between them cannot leave
        a mark with no entry (a redelivery would then be dropped as already kept: lost)
        nor an entry with no bytes. ``raw=b""`` (a forged event) keeps no bytes at all.
        """
        fields = {
            "error": error,
            "stage": stage,
            "at": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "line": "" if line is None else str(line),
            "event_id": event_id or "",
            "dedup": dedup or "",
            "sha256": hashlib.sha256(raw).hexdigest(),
            "size": str(len(raw)),
        }
        keys = [self.keys.quarantine_seen, self.keys.quarantine, self.keys.stats]
        args: list[Any] = [dedup or "", self.keys.quarantine_raw, raw]
        for name, value in fields.items():
            args += [name, value]
        return bool(self._quarantine(keys=keys, args=args))

    def quarantine_entries(self, *, raw: bool = False) -> list[dict[str, Any]]:
        """Every entry, oldest first; its raw bytes (content: an evidence read) only if
        ``raw``, from the evidence key or, for an entry written before the bytes moved
        there, from the entry itself (``b""`` when none were kept)."""
        rows = self.client.xrange(self.keys.quarantine)
        kept: list[Any] = [None] * len(rows)
        if raw and rows:
            kept = self.client.hmget(self.keys.quarantine_raw, [i for i, _ in rows])
        out = []
        for (entry_id, fields), stored in zip(rows, kept, strict=True):
            item = {k.decode(): v for k, v in fields.items()}
            inline = item.get("raw")
            size = item.get("size", b"").decode()
            entry = {
                "id": entry_id.decode(),
                "line": int(item["line"]) if item.get("line") else None,
                "error": item["error"].decode(),
                "stage": item["stage"].decode(),
                "event_id": item.get("event_id", b"").decode() or None,
                "at": item["at"].decode(),
                "sha256": item["sha256"].decode()
                if "sha256" in item
                else hashlib.sha256(inline or b"").hexdigest(),
                "size": int(size) if size.isdigit() else len(inline or b""),
            }
            if raw:
                entry["raw"] = inline if inline is not None else (stored or b"")
            out.append(entry)
        return out

    # -- reads for people and reports -------------------------------------------
    def case(self, case_id: str) -> Case | None:
        tag = self.tag_of(case_id)
        raw = self.client.get(self.keys.case(tag, case_id)) if tag else None
        return Case.model_validate_json(raw) if raw else None

    def member(self, member_id: str) -> Member | None:
        tag = self.client.hget(self.keys.members, member_id)
        raw = self.client.get(self.keys.member(tag.decode(), member_id)) if tag else None
        return Member.model_validate_json(raw) if raw else None

    def _all(self, index: str, key: Any, model: Any) -> list[Any]:
        """Every record an index names, by id. On fakeredis the index and the records are
        read straight from the fake server (the report of a year reads them all)."""
        if self._python_commit is not None:
            [found] = self._python_commit.run([["HGETALL", index]])
            if not isinstance(found, dict):  # RESP2: field, value, field, value...
                found = dict(zip(found[::2], found[1::2], strict=True))
        else:
            found = self.client.hgetall(index)
        pairs = sorted((k.decode(), v.decode()) for k, v in found.items())
        out: list[Any] = []
        for start in range(0, len(pairs), 500):
            keys = [key(tag, name) for name, tag in pairs[start : start + 500]]
            if self._python_commit is not None:
                [values] = self._python_commit.run([["MGET", *keys]])
            else:
                values = self.client.mget(keys)
            out.extend(model.model_validate_json(v) for v in values if v)
        return out

    def cases(self) -> list[Case]:
        return self._all(self.keys.cases, self.keys.case, Case)

    def members(self) -> list[Member]:
        return self._all(self.keys.members, self.keys.member, Member)

    def effects(self) -> list[Effect]:
        return [Effect.model_validate_json(v) for v in self.client.lrange(self.keys.effects, 0, -1)]

    def timers(self) -> list[Timer]:
        return [Timer.model_validate_json(v) for v in self.client.zrange(self.keys.timers, 0, -1)]

    def next_due(self, until_ms: int) -> tuple[str, int] | None:
        """The first timer due at or before ``until_ms`` (its JSON and due ms), if any."""
        [due] = self._together(
            [["ZRANGEBYSCORE", self.keys.timers, "-inf", until_ms, "WITHSCORES", "LIMIT", 0, 1]]
        )
        if not due:
            return None
        # [[member, score]] (redis-py's WITHSCORES callback; fakeredis's reply), or flat
        raw, score = due[0] if isinstance(due[0], list | tuple) else due[:2]
        return (raw.decode() if isinstance(raw, bytes) else raw), int(float(score))

    def timer_pending(self, member: str) -> bool:
        """Whether the timer index still holds this timer (its JSON, as ``timer_member``)."""
        [score] = self._together([["ZSCORE", self.keys.timers, member]])
        return score is not None

    @staticmethod
    def timer_member(timer: Timer) -> str:
        """A timer as the index holds it (scored by its due time in ms)."""
        return _timer_member(timer)

    def due_timers(self, until: datetime, limit: int = 100) -> list[Timer]:
        raw = self.client.zrangebyscore(
            self.keys.timers, "-inf", int(until.timestamp() * 1000), start=0, num=limit
        )
        return [Timer.model_validate_json(v) for v in raw]

    def chains(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.client.hgetall(self.keys.chains).items()}

    def audit(self, chain_id: str, tag: str | None = None) -> list[AuditEntry]:
        tag = tag or self.chains().get(chain_id) or self.tag_of(chain_id)
        if tag is None:
            return []
        return [
            AuditEntry.model_validate_json(fields[b"e"])
            for _, fields in self.client.xrange(self.keys.audit(tag, chain_id))
        ]

    def iter_audit(self) -> Iterator[tuple[str, list[AuditEntry]]]:
        for chain_id, tag in sorted(self.chains().items()):
            yield chain_id, self.audit(chain_id, tag)

    def stats(self) -> dict[str, int]:
        raw = self.client.hgetall(self.keys.stats)
        out = {"accepted": 0, "duplicates": 0, "quarantined": 0}
        out.update({k.decode(): int(v) for k, v in raw.items()})
        return out

    def outbox_pending(self) -> int:
        return int(self.client.scard(self.keys.pending))
