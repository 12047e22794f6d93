"""Issue 5, crashes: events published while worker processes are SIGKILLed and restarted.

A simulated charity's mixed events (posts, complaints, allegations, reviews, appeals,
consents, guardians, members leaving), some published twice, some invalid at publish,
some invalid bodies sent straight to the worker, go through ``esafety worker
--processes 2``; every few seconds one process is killed with SIGKILL and the
supervisor starts it again. When the queues drain: every event is accounted for (its
commit's idempotency key exists, or a quarantine entry names it), no effect id is
delivered twice and every committed effect is delivered, every audit chain verifies.

For each kill the test times how long dramatiq took to give the dead process's
unacknowledged messages back (its maintenance requeues them once the heartbeat is
older than ``ESAFETY_HEARTBEAT_TIMEOUT_MS``) and until they were processed elsewhere.
"""

from __future__ import annotations

import json
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from esafety.workers.cli.publish_cmd import publish_lines
from esafety.workers.simulate import simulate

from tests.integration.test_reliability_kit import (
    Kill,
    account,
    app_for,
    audit_findings,
    broken_chains,
    kill,
    notifier_ids,
    rate_limited,
    start_workers,
    unsettled_cases,
    wait_drained,
    watch_redelivery,
)
from tests.unit.test_hostile_payloads import hostile_bodies

pytestmark = pytest.mark.integration


def _mix(members: int, days: int, seed: int) -> dict[str, list[Any]]:
    """Valid events, copies of some of them, lines invalid at publish, bodies for the worker."""
    rng = random.Random(seed)
    events = [json.dumps(e) for e in simulate(members, days, seed, start=datetime.now(UTC))]
    copies = rng.sample(events, len(events) // 12)
    invalid = [b for _, b in hostile_bodies(len(events) // 16, seed=seed)]
    direct = [b for _, b in hostile_bodies(len(events) // 16, seed=seed + 1, offset=10**6)]
    lines = events + copies + invalid
    rng.shuffle(lines)
    return {"events": events, "copies": copies, "lines": lines, "direct": direct}


def _publish(app: Any, mix: dict[str, list[Any]], per_second: float) -> dict[str, int]:
    counts = {"sent": 0, "quarantined": 0}
    chunks = [mix["lines"][i : i + 25] for i in range(0, len(mix["lines"]), 25)]
    direct = iter(mix["direct"])

    def send(chunk: list[str]) -> None:
        for name, n in publish_lines(app, chunk).items():
            counts[name] += n
        for body in [next(direct, None) for _ in range(2)]:
            if body is not None:
                app.actors["handle_event"].send(body)

    rate_limited(chunks, per_second / 25, send)
    for body in direct:
        app.actors["handle_event"].send(body)
    return counts


def _run(
    env: dict[str, str],
    tmp_path: Path,
    mix: dict[str, list[Any]],
    *,
    kills: int,
    every: float,
    seconds: float,
) -> dict[str, Any]:
    workers = start_workers(env, tmp_path / "workers.log", processes=2, threads=8)
    records: list[Kill] = []
    watchers: list[threading.Thread] = []
    try:
        workers.wait_ready(2)
        app = app_for(env)
        client, namespace = app.broker.client, env["ESAFETY_BROKER_NAMESPACE"]
        counts: dict[str, int] = {}
        publisher = threading.Thread(
            target=lambda: counts.update(
                _publish(app, mix, per_second=len(mix["lines"]) / seconds)
            ),
            daemon=True,
        )
        started = time.monotonic()
        publisher.start()
        deadline = time.monotonic() + 120
        while len(records) < kills and time.monotonic() < deadline:
            time.sleep(every)
            ready = workers.ready()
            if len(ready) < 2:
                continue  # one is being restarted: never kill the last one
            victim = ready[len(records) % 2]
            records.append(kill(client, namespace, workers, victim))
            watchers.append(watch_redelivery(client, namespace, records[-1]))
        publisher.join(timeout=300)
        report = wait_drained(app, timeout=300)
        elapsed = time.monotonic() - started
        for watcher in watchers:
            watcher.join(timeout=30)
    finally:
        workers.stop()
    return {
        "app": app,
        "report": report,
        "counts": counts,
        "kills": records,
        "wanted": kills,
        "s": elapsed,
    }


def _check(env: dict[str, str], result: dict[str, Any], mix: dict[str, list[Any]]) -> str:
    app, report, counts = result["app"], result["report"], result["counts"]
    store = app.store
    fate = account(store, mix["events"])
    assert fate["missing"] == [], f"{len(fate['missing'])} events lost: {fate['missing'][:5]}"
    entries = store.quarantine_entries(raw=True)
    assert counts["quarantined"] == len(mix["lines"]) - len(mix["events"]) - len(mix["copies"])
    assert sum(e["stage"] == "publish" for e in entries) == counts["quarantined"]
    kept = {e["raw"] for e in entries if e["stage"] == "consume"}
    assert {b.encode("utf-8", "surrogatepass") for b in mix["direct"]} <= kept
    stats = report["events"]
    committed = len(fate["committed"])
    assert stats["accepted"] <= committed <= stats["accepted"] + stats["duplicates"]
    # Each copy of a committed event counts as a duplicate, unless it was quarantined: a
    # review whose case came late can exhaust its retries in one copy while the other
    # commits (the entry then replays as "already committed"). A copy of a quarantined
    # event is kept once, not counted.
    done = set(fate["committed"])
    late = sum(e["event_id"] in done for e in entries)
    assert stats["duplicates"] + late >= sum(json.loads(c)["id"] in done for c in mix["copies"])
    assert stats["quarantined"] == len(entries)

    effects = [e.effect_id for e in store.effects()]
    assert len(effects) == len(set(effects)), "an effect was committed twice"
    delivered = notifier_ids(Path(env["ESAFETY_NOTIFIER"][len("file:") :]))
    twice = [e for e, n in delivered.items() if n > 1]
    assert twice == [], f"effects delivered twice: {twice[:5]}"
    assert set(delivered) == set(effects)
    assert broken_chains(store) == []
    assert audit_findings(env) == []  # esafety audit verify: hashes, links and signed heads
    assert unsettled_cases(store) == [], "a case left mid-step: neither final nor waiting"

    kills: list[Kill] = result["kills"]
    assert len(kills) == result["wanted"], "a restarted worker never came back"
    assert any(k.ready_ids for k in kills), "no kill caught a process holding a message"
    for k in kills:
        if k.held_ids:
            assert k.redelivered_s is not None and k.redelivered_s <= 15, k.line()
        if k.ready_ids:
            assert k.processed_s is not None and k.processed_s <= 15, k.line()
    times = "; ".join(k.line() for k in kills)
    return (
        f"{len(mix['events'])} events + {len(mix['copies'])} copies + "
        f"{counts['quarantined']} invalid lines + {len(mix['direct'])} bad bodies; "
        f"{len(result['kills'])} kills; committed {committed}, quarantined {len(entries)}, "
        f"duplicates {stats['duplicates']} (+{late} late copies quarantined), "
        f"effects {len(effects)} (relayed {report['outbox_relayed']}); "
        f"drained in {result['s']:.1f} s; kills: {times}"
    )


def test_a_killed_worker_loses_nothing_and_repeats_nothing(
    worker_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mix = _mix(members=120, days=8, seed=3)
    result = _run(worker_env, tmp_path, mix, kills=1, every=2.0, seconds=5)
    line = _check(worker_env, result, mix)
    with capsys.disabled():  # the kill-to-redelivery times, in every run's output (no -s)
        print("\ncrash (fast):", line)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_5000_events_while_workers_are_killed_every_few_seconds(
    worker_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mix = _mix(members=500, days=60, seed=11)
    assert len(mix["events"]) >= 5_000, len(mix["events"])  # distinct valid events, before
    # the copies and the invalid lines and bodies
    result = _run(worker_env, tmp_path, mix, kills=8, every=3.0, seconds=24)
    line = _check(worker_env, result, mix)
    with capsys.disabled():
        print("\ncrash (5,000):", line)
