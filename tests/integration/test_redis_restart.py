"""Issue 5, Redis restarts: nothing that was acknowledged is lost.

A Redis of the test's own on a loopback port (6391-6399) with ``appendonly yes`` and
``appendfsync always`` carries the queues and the store of ``esafety worker
--processes 2``. While events are published, the server is killed (SIGKILL: a crash,
not a clean shutdown) and started again on the same port and directory. The
publisher retries what the outage refused; an event counts as acknowledged once
``publish()`` returned. When the queues drain, every acknowledged event is accounted
for, every committed effect was delivered once, every audit chain verifies, and the
worker processes survived the outage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from esafety.events.publish import publish
from esafety.workers.app import DramatiqSender
from esafety.workers.simulate import simulate

from tests.integration.test_reliability_kit import (
    account,
    app_for,
    audit_findings,
    broken_chains,
    notifier_ids,
    start_workers,
    unsettled_cases,
    wait_drained,
)

pytestmark = pytest.mark.integration
PORTS = range(6391, 6400)


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    pytest.skip("no free loopback port in 6391-6399 for a Redis of our own")


class RedisServer:
    """``redis-server`` with an append-only file fsynced at every write; stopped by pid."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port, self.directory = port, directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except (redis.ConnectionError, redis.BusyLoadingError):
                time.sleep(0.05)
        raise AssertionError(f"redis-server on {self.port} did not start")

    def crash(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    data = tmp_path / "redis"
    data.mkdir()
    server = RedisServer(_free_port(), data)
    server.start()
    yield server
    server.stop()


def _publish_all(app: Any, events: list[dict[str, Any]], acked: list[dict[str, Any]]) -> None:
    """Publish each event, retrying through the outage; record it once acknowledged."""
    sender = DramatiqSender(app)
    for event in events:
        deadline = time.monotonic() + 60
        while True:
            try:
                publish(event, sender=sender)
                break
            except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
                assert time.monotonic() < deadline, "Redis did not come back"
                time.sleep(0.05)
        acked.append(event)
        time.sleep(0.002)


def _run(own_redis: RedisServer, tmp_path: Path, members: int, days: int, restarts: int) -> str:
    env = {
        **os.environ,
        "ESAFETY_REDIS_URL": f"redis://127.0.0.1:{own_redis.port}/0",
        "ESAFETY_KEY_PREFIX": "restart",
        "ESAFETY_BROKER_NAMESPACE": "restart-dq",
        "ESAFETY_NOTIFIER": f"file:{tmp_path / 'notices.jsonl'}",
        "ESAFETY_LOG_FORMAT": "json",
    }
    events = list(simulate(members, days, 5, start=datetime.now(UTC)))
    workers = start_workers(env, tmp_path / "workers.log", processes=2, threads=4)
    acked: list[dict[str, Any]] = []
    try:
        pids = sorted(workers.wait_ready(2))
        app = app_for(env)
        publisher = threading.Thread(target=_publish_all, args=(app, events, acked), daemon=True)
        publisher.start()
        outages = []
        for n in range(restarts):
            while len(acked) < len(events) * (n + 1) // (restarts + 1):
                time.sleep(0.01)
            at = time.monotonic()
            own_redis.crash()
            time.sleep(1.0)
            own_redis.start()
            outages.append(time.monotonic() - at)
        publisher.join(timeout=300)
        assert not publisher.is_alive()
        wait_drained(app, timeout=240)
        assert sorted(workers.children()) == pids, "a worker process died in the outage"
    finally:
        workers.stop()

    fate = account(app.store, acked)
    assert fate["missing"] == [], f"{len(fate['missing'])} acknowledged events lost"
    assert len(acked) == len(events)
    effects = [e.effect_id for e in app.store.effects()]
    delivered = notifier_ids(tmp_path / "notices.jsonl")
    assert len(effects) == len(set(effects))
    assert set(delivered) == set(effects) and set(delivered.values()) <= {1}
    assert broken_chains(app.store) == []
    assert audit_findings(env) == []
    assert unsettled_cases(app.store) == []
    assert [e for e in workers.lines("worker.died") if e.get("event") == "worker.died"] == []
    return (
        f"{len(acked)} events acknowledged, {len(fate['committed'])} committed, "
        f"{len(fate['quarantined'])} quarantined, {len(effects)} effects delivered once; "
        f"outages {', '.join(f'{s:.1f} s' for s in outages)}"
    )


def test_a_crashed_redis_with_fsynced_aof_loses_nothing_acknowledged(
    own_redis: RedisServer, tmp_path: Path
) -> None:
    print("\nredis restart (fast):", _run(own_redis, tmp_path, members=60, days=4, restarts=1))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_redis_crashing_three_times_under_load(own_redis: RedisServer, tmp_path: Path) -> None:
    print("\nredis restart (slow):", _run(own_redis, tmp_path, members=150, days=40, restarts=3))


def test_the_append_only_file_is_what_survives(own_redis: RedisServer) -> None:
    """The premise: a write Redis acknowledged survives SIGKILL with appendfsync always."""
    client = redis.Redis(port=own_redis.port)
    client.set("acknowledged", json.dumps({"n": 1}))
    own_redis.crash()
    own_redis.start()
    assert json.loads(client.get("acknowledged") or b"{}") == {"n": 1}
