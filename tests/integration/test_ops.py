"""Operators' guarantees with real worker processes on the real Redis.

SIGTERM finishes the messages in flight and exits 0 (nothing is left held, and
nothing is processed twice afterwards); a worker process that dies is started
again; ``esafety status --json`` keeps DESIGN.md's contract. The first two take
tens of seconds on a busy machine: they run with ``-m slow`` (``.ci/run`` does).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
import redis
from esafety.events.publish import publish
from esafety.workers.app import App, DramatiqSender, build_app
from esafety.workers.settings import Settings
from esafety.workers.status import collect_status, drained

from tests.helpers import post
from tests.integration.conftest import esafety, wait_for


def app_for(env: dict[str, str]) -> App:
    return build_app(Settings(**_settings_from(env)))


def _settings_from(env: dict[str, str]) -> dict[str, str]:
    names = ("REDIS_URL", "BROKER_URL", "KEY_PREFIX", "BROKER_NAMESPACE", "NOTIFIER")
    return {n.lower(): env[f"ESAFETY_{n}"] for n in names if f"ESAFETY_{n}" in env}


def publish_posts(app: App, count: int, start: int = 0) -> None:
    sender = DramatiqSender(app)
    for n in range(start, start + count):
        publish(post(f"p{n}", f"m{n % 97}", f"Thanks for the lovely day {n}"), sender=sender)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def live_workers(client: redis.Redis, prefix: str) -> set[str]:
    return {m.decode() for m in client.zrange(f"{prefix}:workers", 0, -1)}


@pytest.mark.slow
def test_sigterm_finishes_messages_in_flight_and_exits_cleanly(
    start_workers: Callable[..., subprocess.Popen[bytes]],
    worker_env: dict[str, str],
    real_redis: redis.Redis,
    prefix: str,
) -> None:
    app = app_for(worker_env)
    total = 1200
    publish_posts(app, total)
    worker = start_workers("--processes", "1", "--threads", "4")
    wait_for(lambda: app.store.stats()["accepted"] >= 100, timeout=60, every=0.02)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    after_stop = collect_status(app)
    assert all(q["in_flight"] == 0 for q in after_stop["queues"].values()), after_stop["queues"]
    accepted = after_stop["events"]["accepted"]
    assert accepted < total, "the run finished before SIGTERM: nothing was in flight"
    assert accepted + after_stop["queues"]["events"]["ready"] == total
    assert after_stop["workers"] == 0  # a clean exit unregisters the process

    again = start_workers("--processes", "1", "--threads", "4")
    wait_for(lambda: drained(collect_status(app)), timeout=90)
    final = collect_status(app)["events"]
    assert final == {"accepted": total, "duplicates": 0, "quarantined": 0}
    again.send_signal(signal.SIGTERM)
    assert again.wait(timeout=60) == 0


@pytest.mark.slow
def test_a_worker_process_that_dies_is_started_again(
    start_workers: Callable[..., subprocess.Popen[bytes]],
    worker_env: dict[str, str],
    real_redis: redis.Redis,
    prefix: str,
) -> None:
    port = free_port()
    supervisor = start_workers("--processes", "2", "--threads", "2", "--metrics-port", str(port))
    wait_for(lambda: len(live_workers(real_redis, prefix)) == 2, timeout=60)
    before = live_workers(real_redis, prefix)
    victim = int(sorted(before)[0].rsplit("/", 1)[1])
    os.kill(victim, signal.SIGKILL)

    def replaced() -> bool:
        now = live_workers(real_redis, prefix) - before
        return len(now) == 1

    wait_for(replaced, timeout=60)
    wait_for(lambda: _health(port) == 200, timeout=30)
    app = app_for(worker_env)
    publish_posts(app, 50)
    wait_for(lambda: app.store.stats()["accepted"] == 50, timeout=60)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=60) == 0


def _health(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_status_json_keeps_the_design_contract(
    worker_env: dict[str, str], real_redis: redis.Redis, prefix: str
) -> None:
    app = app_for(worker_env)
    publish_posts(app, 5)
    app.actors["fire_timer"].send_with_options(args=("{}",), delay=3_600_000)
    result = subprocess.run(
        esafety("status", "--json"), env=worker_env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) >= {
        "queues",
        "events",
        "dead_letters",
        "quarantine",
        "oldest_waiting_s",
        "workers",
        "cases_open",
        "outbox_pending",
    }
    assert set(report["queues"]) == {"events", "timers", "commands", "deliveries"}
    for counts in report["queues"].values():
        assert set(counts) == {"ready", "delayed", "in_flight", "retrying"}
    assert report["queues"]["events"]["ready"] == 5
    assert report["queues"]["timers"]["delayed"] == 1
    assert report["events"] == {"accepted": 0, "duplicates": 0, "quarantined": 0}
    assert report["workers"] == 0 and report["outbox_pending"] == 0
    assert report["oldest_waiting_s"] >= 0
    human = subprocess.run(
        esafety("status"), env=worker_env, capture_output=True, text=True, timeout=60
    )
    assert human.returncode == 0, human.stderr
    assert "events" in human.stdout and "working" in human.stdout
