"""Issue 5, concurrency: 500 breaches by one member through 2 processes x 8 threads.

Every post's commit checks the member's version, so sixteen threads racing on one
member retry their conflicts instead of losing an update. What the policy says is
computed by the embedded run of the same events (one thread, in order) and must
come out the same: the same member, the same outcomes and effect kinds. For the
default policy that is: 2 warnings, suspended, one warning notice, one removal
notice (a member already suspended is not warned again, workflows/ladder.py).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from esafety.events.publish import publish
from esafety.workers.app import DramatiqSender
from esafety.workers.clock import VirtualClock
from esafety.workers.engine import Engine
from esafety.workers.keys import Keys
from esafety.workers.notifier import MemoryNotifier
from esafety.workers.report import build_report
from esafety.workers.store import CommitResult, Loaded, RedisStore
from esafety.workflows.policy import default_policy

from tests.helpers import post
from tests.integration.test_reliability_kit import (
    app_for,
    audit_findings,
    broken_chains,
    notifier_ids,
    start_workers,
    wait_drained,
)

pytestmark = pytest.mark.integration


def _posts(count: int) -> list[dict]:
    at = datetime.now(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        post(f"p{i}", "m-one", "this rota is shit", id=f"breach-{i}", time=at) for i in range(count)
    ]


def _policy_says(events: list[dict], env: dict[str, str]) -> dict:
    """The same events one at a time through the same engine, in this process, on keys
    of their own (``<prefix>:expected:``, cleaned with the prefix) and with no queues."""
    app = app_for({**env, "ESAFETY_KEY_PREFIX": env["ESAFETY_KEY_PREFIX"] + ":expected"})
    app.engine.dispatch = None
    for event in events:
        app.engine.handle_event(json.dumps(event))
    return build_report(app.store)


def _breaches(count: int, worker_env: dict[str, str], tmp_path: Path) -> None:
    events = _posts(count)
    expected = _policy_says(events, worker_env)
    workers = start_workers(worker_env, tmp_path / "workers.log", processes=2, threads=8)
    try:
        workers.wait_ready(2)
        app = app_for(worker_env)
        sender = DramatiqSender(app)
        started = time.monotonic()
        for event in events:
            publish(event, sender=sender)
        report = wait_drained(app, timeout=120)
        elapsed = time.monotonic() - started
    finally:
        workers.stop()

    member = app.store.member("m-one")
    assert member is not None
    [want] = expected["members"]
    assert (member.status.value, member.warnings) == (want["status"], want["warnings"])
    assert (member.status.value, member.warnings) == ("suspended", 2)  # the default policy

    cases = [c for c in app.store.cases() if c.case_id.startswith("post:")]
    assert len(cases) == count
    assert {c.state.value for c in cases} == {"closed"}
    outcomes = Counter(c.outcome.value for c in cases)
    assert outcomes == Counter(row["outcome"] for row in expected["cases"])

    kinds = Counter(e.kind.value for e in app.store.effects())
    assert kinds == Counter(e["kind"] for e in expected["effects"])
    assert kinds["removal_notice"] == 1 and kinds["warning_notice"] == 1

    effect_ids = Counter(e.effect_id for e in app.store.effects())
    delivered = notifier_ids(Path(worker_env["ESAFETY_NOTIFIER"][len("file:") :]))
    assert max(delivered.values()) == 1, "an effect was delivered twice"
    assert set(delivered) == set(effect_ids) and max(effect_ids.values()) == 1

    assert report["events"] == {"accepted": count, "duplicates": 0, "quarantined": 0}
    assert broken_chains(app.store) == []
    assert audit_findings(worker_env) == []
    print(f"\n{count} breaches, 2 x 8 threads: drained in {elapsed:.1f} s")


@pytest.mark.slow
def test_500_breaches_by_one_member_on_2_processes_x_8_threads(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    _breaches(500, worker_env, tmp_path)


def test_breaches_by_one_member_on_2_processes_x_8_threads(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    """The default run's variant of the 500 (the slow run has the 500)."""
    _breaches(120, worker_env, tmp_path)


class _RacingStore(RedisStore):
    """A store that lets a rival commit for the same member between this read and its commit
    (the lost-update race), and counts the version conflicts its commits meet."""

    def __init__(self, client: redis.Redis, keys: Keys, rival: Callable[[], object]) -> None:
        super().__init__(client, keys)
        self.rival: Callable[[], object] | None = rival
        self.conflicts = 0

    def load(self, tag: str, **where: Any) -> Loaded:
        loaded = super().load(tag, **where)
        rival, self.rival = self.rival, None
        if rival is not None and where.get("member_id"):
            rival()
        return loaded

    def commit(self, plan: dict[str, Any], keys: list[str]) -> CommitResult:
        result = super().commit(plan, keys)
        self.conflicts += result.status == "conflict"
        return result


def _engine(store: RedisStore) -> Engine:
    return Engine(
        store=store,
        policy=default_policy(),
        clock=VirtualClock(datetime.now(UTC)),
        notifier=MemoryNotifier(),
    )


def test_a_stale_read_meets_a_version_conflict_and_is_retried(
    real_redis: redis.Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    first, second = _posts(2)
    rival = _engine(RedisStore(real_redis, keys))
    racing = _RacingStore(real_redis, keys, lambda: rival.handle_event(json.dumps(second)))
    assert _engine(racing).handle_event(json.dumps(first)) == "ok"
    assert racing.conflicts == 1  # its first commit read the member before the rival's warning
    member = racing.member("m-one")
    assert member is not None and (member.status.value, member.warnings) == ("suspended", 2)
    assert broken_chains(racing) == []


def test_sixteen_threads_on_one_member_in_process(real_redis: redis.Redis, prefix: str) -> None:
    store = _RacingStore(real_redis, Keys(prefix), lambda: None)
    engine = _engine(store)
    events = [json.dumps(e) for e in _posts(160)]
    with ThreadPoolExecutor(16) as pool:
        outcomes = Counter(pool.map(engine.handle_event, events))
    assert outcomes == {"ok": 160}
    member = store.member("m-one")
    assert member is not None and (member.status.value, member.warnings) == ("suspended", 2)
    kinds = Counter(e.kind.value for e in store.effects())
    assert (kinds["warning_notice"], kinds["removal_notice"], kinds["delete_post"]) == (1, 1, 160)
    assert broken_chains(store) == []
    print(f"\n16 threads, 160 breaches of one member: {store.conflicts} version conflicts retried")
