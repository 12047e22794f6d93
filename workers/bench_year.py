"""``bench process`` and ``bench replay``: a simulated year, embedded and replayed, with baselines.

Why these baselines: issue 10 measured ``process``'s floor as one dramatiq message
through the StubBroker and one Lua commit on fakeredis per event. Both are measured
in the same run (``stub``: a StubBroker actor doing one small commit per message;
``direct``: the same commit in a plain loop), so a slow machine shows in the baseline
too: with the Lua script (the issue's baseline) and with the Python commit ``process``
uses on fakeredis. ``process`` itself now calls each actor's handler from an
in-process queue (the StubBroker only takes a handler that raises, for dramatiq's
retries: ``process.py``), so its floor is the Python commit alone, a few per event.
A replay needs no store: it is measured beside the replay that decides every event
(``full``) and beside ``process`` itself.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import dramatiq
import fakeredis
from dramatiq.brokers.stub import StubBroker

from ..workflows.policy import Policy
from .app import App, build_app
from .archive import ArchivedEvent, read_archive
from .clock import VirtualClock, stopwatch
from .keys import Keys
from .process import Processor
from .replay import Replay
from .replay_diff import Snapshot, compare
from .settings import Settings
from .simulate import simulate
from .store import Applier, RedisStore

__all__ = [
    "archive_of",
    "commit_baselines",
    "measure_process",
    "measure_replay",
    "simulated_lines",
    "three_warnings",
]

Progress = Callable[[str, int, int], None]


def simulated_lines(members: int, days: int, seed: int) -> list[str]:
    return [json.dumps(e, separators=(",", ":")) for e in simulate(members, days, seed)]


def _one_commit(store: RedisStore, number: int) -> None:
    keys = store.keys
    plan = {
        "seen": keys.seen("m:bench", "bench", str(number)),
        "sets": [[keys.case("m:bench", f"post:{number}"), json.dumps({"version": 1})]],
        "hincrs": [[keys.stats, "accepted", 1]],
        "result": "{}",
    }
    store.commit(plan, [])


def _baseline(applier: Applier, messages: int) -> tuple[float, float, float, float]:
    """Messages per second (wall, CPU): one commit through a StubBroker actor, and alone."""
    store = RedisStore(fakeredis.FakeRedis(), Keys(f"bench-direct-{applier}"), applier=applier)
    elapsed, cpu = stopwatch(), stopwatch(cpu=True)
    for number in range(messages):
        _one_commit(store, number)
    direct, direct_cpu = messages / elapsed(), messages / cpu()
    broker = StubBroker()
    broker.emit_after("process_boot")
    stub_store = RedisStore(fakeredis.FakeRedis(), Keys(f"bench-stub-{applier}"), applier=applier)

    def commit(number: int) -> None:
        _one_commit(stub_store, number)

    actor = dramatiq.actor(commit, broker=broker, actor_name="bench_commit", queue_name="bench")
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        elapsed, cpu = stopwatch(), stopwatch(cpu=True)
        for number in range(messages):
            actor.send(number)
        broker.join("bench")
        stub, stub_cpu = messages / elapsed(), messages / cpu()
    finally:
        worker.stop()
    return stub, direct, stub_cpu, direct_cpu


def commit_baselines(messages: int = 3000) -> dict[str, float]:
    """Messages per second on fakeredis, through a StubBroker actor and alone: the Lua
    commit (issue 10's baseline) and the Python commit ``process`` uses embedded."""
    out: dict[str, float] = {}
    appliers: tuple[tuple[Applier, str], ...] = (("lua", "lua"), ("python", "py"))
    for applier, name in appliers:
        stub, direct, stub_cpu, direct_cpu = _baseline(applier, messages)
        out |= {
            f"stub_broker_{name}_commit_per_s": round(stub),
            f"{name}_commit_alone_per_s": round(direct),
            f"stub_broker_{name}_commit_per_cpu_s": round(stub_cpu),
            f"{name}_commit_alone_per_cpu_s": round(direct_cpu),
        }
    return out


def measure_process(
    lines: list[str], *, until_days: float = 31, progress: Progress | None = None
) -> tuple[App, dict[str, Any]]:
    """``process`` embedded on ``lines``, the clock moved on ``until_days`` after the last event."""
    app = build_app(Settings(redis_url=None), embedded=True, clock=VirtualClock())
    end = datetime.fromisoformat(json.loads(lines[-1])["time"].replace("Z", "+00:00"))
    until = end + timedelta(days=until_days)
    elapsed, cpu = stopwatch(), stopwatch(cpu=True)
    with Processor(app) as processor:
        report = processor.run(
            lines,
            until=until,
            progress=(lambda n: progress("process", n, len(lines))) if progress else None,
        )
    seconds, cpu_seconds = elapsed(), cpu()
    due_left = [t for t in report["timers"] if t["due"] <= until.strftime("%Y-%m-%dT%H:%M:%SZ")]
    return app, {
        "events": len(lines),
        "seconds": round(seconds, 1),
        "events_per_s": round(len(lines) / seconds),
        "events_per_cpu_s": round(len(lines) / cpu_seconds),
        "until": until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "accepted": report["events"]["accepted"],
        "quarantined": report["events"]["quarantined"],
        "cases": len(report["cases"]),
        "effects": len(report["effects"]),
        "timers_pending": len(report["timers"]),
        "timers_due_but_not_fired": len(due_left),
    }


def three_warnings(policy: Policy) -> Policy:
    """The what-if the issue names: removal at the third warning instead of the second."""
    sanctions = policy.sanctions.model_copy(update={"warnings_for_removal": 3})
    return policy.model_copy(
        update={"sanctions": sanctions, "version": f"{policy.version}+three-warnings"}
    )


def _rate(replay: Replay) -> int:
    return round(replay.stats.events / replay.stats.seconds) if replay.stats.seconds else 0


def _cpu_rate(replay: Replay) -> int:
    seconds = replay.stats.cpu_seconds
    return round(replay.stats.events / seconds) if seconds else 0


def measure_replay(items: list[ArchivedEvent], policy: Policy, new: Policy) -> dict[str, Any]:
    """Replays of the same archive: the new policy, the same policy, and deciding every event.

    The heap is collected before each, outside the timings: what ``process`` and the
    replays before left is not walked inside the next one's time (where a collection
    falls moved the figures by a factor of up to two)."""

    def run(replay: Replay) -> Replay:
        gc.collect()
        return replay.run(items)

    same = run(Replay(policy, recorded=policy))
    changed = run(Replay(new, recorded=policy))
    # the plain loop: decide() on every event, audit entries written and hashed
    full = run(Replay(new, recorded=policy, full=True, audit=True))
    diff = compare(Snapshot.of_replay(same), Snapshot.of_replay(changed))
    exact = compare(Snapshot.of_replay(full), Snapshot.of_replay(changed))["summary"]
    return {
        "events": len(items),
        "replay_new_policy_per_s": _rate(changed),
        "replay_same_policy_per_s": _rate(same),
        "replay_full_per_s": _rate(full),
        "replay_new_policy_per_cpu_s": _cpu_rate(changed),
        "replay_same_policy_per_cpu_s": _cpu_rate(same),
        "replay_full_per_cpu_s": _cpu_rate(full),
        "inert_posts": changed.stats.inert,
        "screening_reused": changed.stats.screening_reused,
        "difference": diff["summary"],
        "full_equals_fast": not any(exact.values()),
    }


def archive_of(app: App) -> list[ArchivedEvent]:
    return list(read_archive(app.store.client, app.store.keys.prefix))
