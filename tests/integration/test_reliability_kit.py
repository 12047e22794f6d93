"""Helpers for the reliability tests of issue 5 (no tests here).

Real ``esafety worker`` processes on the real Redis: start and kill them, find a
dead process's unacknowledged messages and time their redelivery, wait until the
queues are drained, and check the outcome from the store's own records: every
event committed (its idempotency key exists) or quarantined, no effect id twice in
the notifier's file, every audit chain linked and hashed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from esafety.events.envelope import parse_event
from esafety.events.errors import InvalidEvent
from esafety.workers.app import App, build_app
from esafety.workers.cli.main import build_cli
from esafety.workers.quarantine import seen_key
from esafety.workers.settings import Settings
from esafety.workers.status import collect_status, drained
from esafety.workers.store import RedisStore
from esafety.workflows.audit import GENESIS, entry_hash
from pydantic import SecretStr
from typer.testing import CliRunner

__all__ = [
    "Kill",
    "Workers",
    "account",
    "app_for",
    "audit_findings",
    "broken_chains",
    "busy",
    "esafety_cli",
    "kill",
    "notifier_ids",
    "rate_limited",
    "settings_for",
    "start_workers",
    "unsettled_cases",
    "wait_drained",
    "wait_until",
    "watch_redelivery",
    "worker_trouble",
    "write_raw",
]


def settings_for(env: dict[str, str]) -> Settings:
    """The settings a worker started with ``env`` reads (built here without os.environ)."""
    return Settings(
        redis_url=SecretStr(env["ESAFETY_REDIS_URL"]),
        key_prefix=env["ESAFETY_KEY_PREFIX"],
        broker_namespace=env["ESAFETY_BROKER_NAMESPACE"],
        notifier=env["ESAFETY_NOTIFIER"],
        log_format="json",
        log_level="WARNING",
    )


@dataclass
class Workers:
    """One ``esafety worker`` supervisor and its worker processes."""

    proc: subprocess.Popen[bytes]
    log: Path

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(p) for p in path.read_text().split()]
        except FileNotFoundError:
            return []

    def lines(self, containing: str = "") -> list[dict[str, Any]]:
        """The JSON objects of the log. Processes share the file, and with
        PYTHONUNBUFFERED print() writes a line and its newline in two calls, so one
        process's object can be glued to another's: decode objects, not lines."""
        decoder = json.JSONDecoder()
        out = []
        for raw in self.log.read_text("utf-8", errors="replace").splitlines():
            if containing not in raw:
                continue
            at = raw.find("{")
            while at != -1:
                try:
                    item, end = decoder.raw_decode(raw, at)
                except ValueError:
                    at = raw.find("{", at + 1)
                    continue
                if isinstance(item, dict):
                    out.append(item)
                at = raw.find("{", end)
        return out

    def broker_ids(self) -> dict[int, str]:
        return {
            int(item["pid"]): str(item["broker_id"])
            for item in self.lines("worker.ready")
            if item.get("event") == "worker.ready" and item.get("broker_id")
        }

    def ready(self) -> list[int]:
        """Child pids that have logged ``worker.ready``."""
        known = self.broker_ids()
        return [pid for pid in self.children() if pid in known]

    def wait_ready(self, count: int, timeout: float = 30.0) -> list[int]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.ready()
            if len(pids) >= count:
                return pids
            time.sleep(0.1)
        raise AssertionError(f"{count} worker processes not ready within {timeout} s")

    def stop(self, timeout: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def text(self) -> str:
        return self.log.read_text("utf-8", errors="replace")


def start_workers(env: dict[str, str], log: Path, processes: int, threads: int) -> Workers:
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "esafety",
                "worker",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
            ],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    return Workers(proc, log)


def wait_drained(app: App, timeout: float = 120.0, settle: float = 0.5) -> dict[str, Any]:
    """Poll ``esafety status`` until drained twice ``settle`` seconds apart."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = collect_status(app)
        if drained(report):
            time.sleep(settle)
            again = collect_status(app)
            if drained(again):
                return again
        time.sleep(0.2)
    raise AssertionError(f"not drained within {timeout} s: {collect_status(app)}")


def _quarantined_ids(store: RedisStore) -> set[str]:
    ids = set()
    for _, fields in store.client.xrange(store.keys.quarantine):
        event_id = fields.get(b"event_id", b"").decode("utf-8", "replace")
        if event_id:
            ids.add(event_id)
    return ids


def account(store: RedisStore, bodies: Iterable[dict[str, Any] | str]) -> dict[str, list[str]]:
    """Each distinct valid event: ``committed`` (idempotency key written), ``quarantined``
    (an entry names it) or ``missing``."""
    quarantined = _quarantined_ids(store)
    seen: dict[tuple[str, str], str | None] = {}
    for body in bodies:
        try:
            event = parse_event(body)
        except InvalidEvent:
            continue
        seen.setdefault((event.source, event.id), seen_key(store, event))
    keys = list(seen.items())
    pipe = store.client.pipeline(transaction=False)
    for _, key in keys:
        pipe.exists(key or "-")
    exists = pipe.execute()
    out: dict[str, list[str]] = {"committed": [], "quarantined": [], "missing": []}
    for ((_, event_id), key), found in zip(keys, exists, strict=True):
        if key and found:
            out["committed"].append(event_id)
        elif event_id in quarantined:
            out["quarantined"].append(event_id)
        else:
            out["missing"].append(event_id)
    return out


def broken_chains(store: RedisStore) -> list[str]:
    """Chains whose entries do not link (prev_hash), hash (entry_hash) or count (seq)."""
    broken = []
    for chain_id, tag in sorted(store.chains().items()):
        prev, seq = GENESIS, None
        for _, fields in store.client.xrange(store.keys.audit(tag, chain_id)):
            entry = json.loads(fields[b"e"])
            ok = entry["prev_hash"] == prev and entry_hash(entry) == entry["hash"]
            ok = ok and (seq is None or entry["seq"] == seq + 1)
            if not ok:
                broken.append(f"{chain_id}#{entry['seq']}")
                break
            prev, seq = entry["hash"], entry["seq"]
    return broken


#: where a case may rest once the queues drain: closed, or waiting for a person's review
RESTING = frozenset({"closed", "escalation", "parent_notification"})


def unsettled_cases(store: RedisStore) -> list[str]:
    """Cases that are neither final nor waiting (a commit that left one mid-step)."""
    return sorted(f"{c.case_id}={c.state.value}" for c in store.cases() if c.state not in RESTING)


def audit_findings(env: dict[str, str]) -> list[dict[str, Any]]:
    """``esafety audit verify --json`` on the store: hashes, links and signed heads."""
    result = CliRunner().invoke(build_cli(), ["audit", "verify", "--json"], env=env)
    report = json.loads(result.stdout)
    findings: list[dict[str, Any]] = report["findings"]
    assert (result.exit_code == 0) == (findings == []), result.output
    assert report["chains"] > 0, report
    return findings


def notifier_ids(path: Path) -> Counter[str]:
    if not path.exists():
        return Counter()
    return Counter(json.loads(line)["effect_id"] for line in path.read_text().splitlines())


@dataclass
class Kill:
    """A SIGKILLed worker process and how long its messages took to come back.

    ``held``: its unacknowledged messages at the kill, by dramatiq ack key (one per
    queue; ``.DQ`` keys hold delayed messages: timers and retries). ``redelivered_s``:
    until each was acknowledged or held by another worker; ``processed_s``: until each
    of its ready (not delayed) messages was processed and acknowledged.
    """

    pid: int
    broker_id: str
    at: float
    held: dict[str, set[str]] = field(default_factory=dict)
    redelivered_s: float | None = None
    processed_s: float | None = None

    @property
    def held_ids(self) -> int:
        return sum(len(ids) for ids in self.held.values())

    @property
    def ready_ids(self) -> int:
        return sum(len(ids) for key, ids in self.held.items() if not key.endswith(".DQ"))

    def line(self) -> str:
        def secs(value: float | None) -> str:
            return "-" if value is None else f"{value:.1f}"

        return (
            f"{self.held_ids} held ({self.ready_ids} ready): redelivered "
            f"{secs(self.redelivered_s)} s, processed {secs(self.processed_s)} s"
        )


def _held(client: redis.Redis, namespace: str, broker_id: str) -> dict[str, set[str]]:
    out = {}
    for key in client.scan_iter(match=f"{namespace}:__acks__.{broker_id}.*", count=1000):
        members = {m.decode() for m in client.smembers(key)}
        if members:
            out[key.decode()] = members
    return out


def busy(client: redis.Redis, namespace: str, broker_id: str, within: float = 5.0) -> bool:
    """Wait (up to ``within``) until the process holds a ready message: a kill then loses one."""
    deadline = time.monotonic() + within
    keys = [f"{namespace}:__acks__.{broker_id}.{q}" for q in ("events", "deliveries")]
    while time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.scard(key)
        if any(pipe.execute()):
            return True
        time.sleep(0.002)
    return False


def kill(client: redis.Redis, namespace: str, workers: Workers, pid: int) -> Kill:
    broker_id = workers.broker_ids()[pid]
    busy(client, namespace, broker_id)
    os.kill(pid, signal.SIGKILL)
    at = time.monotonic()
    return Kill(pid, broker_id, at, _held(client, namespace, broker_id))


def _pending(client: redis.Redis, namespace: str, record: Kill, ready_only: bool) -> int:
    """How many held messages are neither acknowledged nor (unless ready_only) held by a
    live worker."""
    prefix = f"{namespace}:__acks__.{record.broker_id}."
    live = [
        b.decode()
        for b in client.zrange(f"{namespace}:__heartbeats__", 0, -1)
        if b.decode() != record.broker_id
    ]
    count = 0
    for key, held in record.held.items():
        queue, ids = key[len(prefix) :], sorted(held)
        if ready_only and queue.endswith(".DQ"):
            continue
        pipe = client.pipeline(transaction=False)
        for message_id in ids:
            pipe.hexists(f"{namespace}:{queue}.msgs", message_id)
        stored = [i for i, found in zip(ids, pipe.execute(), strict=True) if found]
        if ready_only or not stored:
            count += len(stored)
            continue
        pipe = client.pipeline(transaction=False)
        for message_id in stored:
            for broker_id in live:
                pipe.sismember(f"{namespace}:__acks__.{broker_id}.{queue}", message_id)
        found = pipe.execute()
        width = len(live)
        count += sum(not any(found[n * width : (n + 1) * width]) for n in range(len(stored)))
    return count


def watch_redelivery(
    client: redis.Redis, namespace: str, record: Kill, timeout: float = 60.0
) -> threading.Thread:
    """Time, in a thread, the redelivery and processing of a dead process's messages."""

    def run() -> None:
        deadline = record.at + timeout
        while time.monotonic() < deadline and record.processed_s is None:
            now = time.monotonic()
            if record.redelivered_s is None and not _pending(client, namespace, record, False):
                record.redelivered_s = now - record.at
            if not _pending(client, namespace, record, True):
                record.processed_s = now - record.at
            time.sleep(0.05)
        while time.monotonic() < deadline and record.redelivered_s is None:
            if not _pending(client, namespace, record, False):
                record.redelivered_s = time.monotonic() - record.at
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def app_for(env: dict[str, str]) -> App:
    return build_app(settings_for(env))


def rate_limited(items: list[Any], per_second: float, send: Callable[[Any], None]) -> None:
    start = time.monotonic()
    for index, item in enumerate(items):
        wait = start + index / per_second - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        send(item)


def write_raw(client: redis.Redis, namespace: str, queue: str, data: bytes, redis_id: str) -> None:
    """Put bytes on a dramatiq queue the way its enqueue script does, bypassing dramatiq."""
    pipe = client.pipeline(transaction=True)
    pipe.hset(f"{namespace}:{queue}.msgs", redis_id, data)
    pipe.rpush(f"{namespace}:{queue}", redis_id)
    pipe.execute()


def worker_trouble(text: str) -> list[str]:
    """Lines of a worker log that show a crash, a dead thread or a swallowed failure."""
    signs = (
        "worker.died",
        "Consumer encountered",
        "unhandled exception",
        "Unexpected failure in",
        "You've found a bug in Dramatiq",
        "Traceback",
    )
    return [line for line in text.splitlines() if any(s in line for s in signs)]


def esafety_cli(
    env: dict[str, str], *args: str, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "esafety", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what}")


def run_cli(env: dict[str, str], *args: str, code: int = 0) -> Any:
    """``esafety ARGS`` in-process with this environment; the exit code must be ``code``."""
    result = CliRunner().invoke(build_cli(), list(args), env=env, catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result
