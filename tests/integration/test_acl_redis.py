"""Least privilege on a real Redis started with ``deploy/redis.conf`` (E5).

A Redis of its own on a spare loopback port (6381-6389), configured by the
shipped file; a real ``esafety worker`` process runs the engine as ``worker``,
events are published as ``producer``, leads read as ``reader`` and look at
evidence as ``evidence``. Then each role is shown what it must not do.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from esafety.workers.app import build_app
from esafety.workers.cli.main import build_cli
from esafety.workers.cli.publish_cmd import publish_lines
from esafety.workers.keys import Keys
from esafety.workers.quarantine import QuarantineBox
from esafety.workers.settings import Settings
from esafety.workers.signing import generate_key_file
from esafety.workers.store import RedisStore
from redis.backoff import NoBackoff
from redis.retry import Retry
from typer.testing import CliRunner

from tests.helpers import envelope, jsonl, post

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "deploy" / "redis.conf"
PASSWORDS = {u: f"esafety-dev-{u}" for u in ("producer", "worker", "reader", "evidence")}


def _free_port() -> int:
    for port in range(6381, 6390):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    if os.environ.get("CI") == "true":
        pytest.fail("CI=true and no spare loopback port in 6381-6389 for the ACL Redis")
    pytest.skip("no spare loopback port in 6381-6389")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed and CI=true")
        pytest.skip("redis-server is not installed")
    port, data = _free_port(), tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        ["redis-server", str(CONF), "--port", str(port), "--dir", str(data), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                anonymous(port).ping()
            except redis.AuthenticationError:
                break  # up, and the default user is off
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server {CONF} did not start")
                time.sleep(0.05)
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def anonymous(port: int) -> redis.Redis:
    return redis.Redis(port=port, retry=Retry(NoBackoff(), 0))


def url(port: int, user: str) -> str:
    return f"redis://{user}:{PASSWORDS[user]}@127.0.0.1:{port}/0"


def client(port: int, user: str) -> redis.Redis:
    return redis.Redis.from_url(url(port, user))


@pytest.fixture(scope="module")
def run(server: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Publish as producer, process with a real worker process, and hand back the env."""
    tmp = tmp_path_factory.mktemp("engine")
    key = tmp / "audit.pem"
    (tmp / "audit.pub").write_text(generate_key_file(key).public_pem)
    env = {
        "ESAFETY_KEY_PREFIX": "esafety",
        "ESAFETY_BROKER_NAMESPACE": "esafety-dramatiq",
        "ESAFETY_AUDIT_KEY_PATH": str(key),
        "ESAFETY_AUDIT_PUBLIC_KEY_PATH": str(tmp / "audit.pub"),
        "ESAFETY_NOTIFIER": f"file:{tmp / 'notices.jsonl'}",
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "esafety.workers.worker_process", "--threads", "2"],
        env={**os.environ, **env, "ESAFETY_REDIS_URL": url(server, "worker")},
        cwd=tmp,
    )
    try:
        producer = build_app(
            Settings(redis_url=url(server, "producer"), maintenance_chance=0, **_lower(env))
        )
        lines = jsonl(
            [
                post("a1", "m-acl", "Lovely day at the fair", id="acl-1"),
                post("a2", "m-acl", "this is total shit", id="acl-2"),
                envelope(
                    "esafety.complaint.received",
                    {"complaint_id": "c-acl", "complainant_ref": "p-9", "text": "Upsetting"},
                    id="acl-3",
                ),
                '{"specversion": "1.0", "id": "acl-bad", "data": {"text": "Quarantined words"',
            ]
        ).splitlines()
        assert publish_lines(producer, lines) == {"sent": 3, "quarantined": 1}
        reader = client(server, "reader")
        deadline = time.monotonic() + 30
        while reader.hlen("esafety:idx:cases") < 3:
            assert worker.poll() is None, "the worker process died"
            assert time.monotonic() < deadline, "the worker did not process the events"
            time.sleep(0.1)
        yield env
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)


def _lower(env: dict[str, str]) -> dict[str, str]:
    return {k.removeprefix("ESAFETY_").lower(): v for k, v in env.items()}


def cli(port: int, user: str, env: dict[str, str], *args: str) -> object:
    full = {**env, "ESAFETY_REDIS_URL": url(port, user), "ESAFETY_NOTIFIER": "memory"}
    return CliRunner().invoke(build_cli(), list(args), env=full)


def denied(action: object) -> bool:
    try:
        action()  # type: ignore[operator]
    except redis.exceptions.NoPermissionError:
        return True
    return False


def test_default_user_is_off(server: int) -> None:
    with pytest.raises(redis.AuthenticationError):
        anonymous(server).get("esafety:idx:cases")


def test_producer_can_enqueue_but_not_read(server: int, run: dict[str, str]) -> None:
    producer = client(server, "producer")
    case_key = "esafety:{m:m-acl}:case:post:a2"
    assert denied(lambda: producer.get(case_key))
    assert denied(lambda: producer.xrange("esafety:{m:m-acl}:audit:post:a2"))
    assert denied(lambda: producer.hgetall("esafety:ev:{m:m-acl}:post:a2"))
    assert denied(lambda: producer.hgetall("esafety:{m:m-acl}:heads"))
    assert denied(lambda: producer.hgetall("esafety:idx:cases"))
    assert denied(lambda: producer.hgetall("esafety-dramatiq:events.msgs"))  # queued text
    assert denied(lambda: producer.xrange("esafety:quarantine"))
    assert denied(lambda: producer.eval("return redis.call('GET', KEYS[1])", 1, case_key))


def test_quarantined_bytes_are_evidence_the_producer_cannot_read(
    server: int, run: dict[str, str]
) -> None:
    """The producer wrote the refused line (entry and bytes, one script) but reads neither;
    the entry holds no content; the bytes are read only from the evidence keys."""
    raw_key = "esafety:ev:quarantine"
    producer, reader = client(server, "producer"), client(server, "reader")
    for who in (producer, reader):
        assert denied(lambda who=who: who.hgetall(raw_key))
        assert denied(lambda who=who: who.hvals(raw_key))
        assert denied(lambda who=who: who.eval("return redis.call('HVALS', KEYS[1])", 1, raw_key))
    worker = client(server, "worker")  # runs `quarantine replay`: the one evidence it reads
    [(entry_id, fields)] = worker.xrange("esafety:quarantine")
    assert b"raw" not in fields and not any(b"Quarantined" in v for v in fields.values())
    assert b"Quarantined words" in worker.hget(raw_key, entry_id)
    assert denied(lambda: worker.hgetall("esafety:ev:{m:m-acl}:post:a2"))  # no other evidence
    listed = cli(server, "worker", run, "quarantine", "list", "--json")
    assert listed.exit_code == 0, listed.output  # type: ignore[attr-defined]
    assert "Quarantined" not in listed.stdout  # type: ignore[attr-defined]
    for user in ("worker", "evidence"):
        shown = cli(server, user, run, "quarantine", "show", entry_id.decode(), "--raw")
        assert shown.exit_code == 0, shown.output  # type: ignore[attr-defined]
        assert "Quarantined words" in shown.stdout  # type: ignore[attr-defined]
    assert cli(server, "producer", run, "quarantine", "list").exit_code != 0  # type: ignore[attr-defined]
    # the workers' retention job removes the bytes under the worker's own rights
    box = QuarantineBox(RedisStore(worker, Keys("esafety")))
    assert box.expire_raw(datetime(2100, 1, 1, tzinfo=UTC)) == 1
    assert worker.hget(raw_key, entry_id) is None and worker.xrange("esafety:quarantine")


def test_reader_reads_cases_and_audit_but_not_evidence(server: int, run: dict[str, str]) -> None:
    cases = cli(server, "reader", run, "cases", "--json")
    assert cases.exit_code == 0, cases.output  # type: ignore[attr-defined]
    ids = {c["case_id"] for c in json.loads(cases.stdout)["cases"]}  # type: ignore[attr-defined]
    assert ids == {"post:a1", "post:a2", "complaint:c-acl"}
    verify = cli(server, "reader", run, "audit", "verify")
    assert verify.exit_code == 0, verify.output  # type: ignore[attr-defined]
    assert "(pinned)" in verify.stderr  # type: ignore[attr-defined]
    reader = client(server, "reader")
    assert denied(lambda: reader.hgetall("esafety:ev:{m:m-acl}:post:a2"))
    assert denied(lambda: reader.xrange("esafety:quarantine"))
    assert denied(lambda: reader.set("esafety:{m:m-acl}:case:post:a2", "{}"))


def test_worker_writes_evidence_but_cannot_read_it(server: int, run: dict[str, str]) -> None:
    worker = client(server, "worker")
    assert denied(lambda: worker.hgetall("esafety:ev:{m:m-acl}:post:a2"))
    assert worker.exists("esafety:ev:{m:m-acl}:post:a2") == 1
    assert worker.get("esafety:{m:m-acl}:case:post:a2") is not None


def test_worker_maintains_the_queues_without_keys(server: int, run: dict[str, str]) -> None:
    """The scheduled maintenance (maintain.lua) runs as ``worker``; KEYS is denied."""
    assert denied(lambda: client(server, "worker").keys("esafety-dramatiq:*"))
    app = build_app(Settings(redis_url=url(server, "worker")))
    _, requeued, expired = app.broker.maintain()  # type: ignore[attr-defined]
    assert (requeued, expired) == (0, 0)  # allowed (a denied command raises), nothing to do


def test_evidence_user_views_and_the_view_is_audited(server: int, run: dict[str, str]) -> None:
    shown = cli(server, "evidence", run, "evidence", "post:a2", "--by", "dsl", "--json")
    assert shown.exit_code == 0, shown.output  # type: ignore[attr-defined]
    items = json.loads(shown.stdout)["items"]  # type: ignore[attr-defined]
    assert [i["text"] for i in items] == ["this is total shit"]
    timeline = cli(server, "reader", run, "timeline", "post:a2", "--json")
    last = json.loads(timeline.stdout)["entries"][-1]  # type: ignore[attr-defined]
    assert (last["trigger"], last["actor"]) == ("evidence_viewed", "human:dsl")
    verify = cli(server, "reader", run, "audit", "verify", "--case", "post:a2")
    assert verify.exit_code == 0, verify.output  # type: ignore[attr-defined]
