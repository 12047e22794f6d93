"""``process``'s local queue against the StubBroker path it replaced (``workers/process.py``).

The same file must give the same report, byte for byte, and leave the same keys,
whether each message is a call of its actor from the in-process queue or a dramatiq
message through the StubBroker and its worker thread. Heads differ only in their
signatures: each embedded app signs with a development key of its own.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import redis
from esafety.workers.app import App, build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.notifier import FileNotifier
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from esafety.workers.simulate import simulate
from esafety.workflows.model import Effect

from tests.conftest import EXAMPLES
from tests.helpers import jsonl, post


def _app(**settings: Any) -> App:
    return build_app(Settings(redis_url=None, **settings), embedded=True, clock=VirtualClock())


def _dump(client: redis.Redis) -> dict[bytes, Any]:
    """Every key's type and value; a head without its signature and key id."""
    out: dict[bytes, Any] = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key).decode()
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash":
            value = sorted(client.hgetall(key).items())
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        else:
            value = [fields for _, fields in client.xrange(key)]
        if key.endswith(b":heads"):
            value = [
                (field, {k: v for k, v in json.loads(raw).items() if k not in ("sig", "key_id")})
                for field, raw in value
            ]
        elif key.endswith(b":idx:audit_keys"):
            value = len(value)  # one development key each
        out[key] = (kind, value)
    return out


def _both(lines: list[str], until: datetime | None = None) -> list[tuple[str, dict[bytes, Any]]]:
    runs = []
    for broker in (False, True):
        app = _app()
        with Processor(app, broker=broker) as processor:
            report = processor.run(lines, until=until)
        runs.append((json.dumps(report, sort_keys=True), _dump(app.store.client)))
    return runs


def test_the_demo_gives_the_same_report_and_keys_on_both_paths() -> None:
    (local, local_keys), (stub, stub_keys) = _both(
        (EXAMPLES / "demo.jsonl").read_text().splitlines()
    )
    assert local == stub
    assert local_keys == stub_keys


def test_a_simulated_season_gives_the_same_report_and_keys_on_both_paths() -> None:
    """Posts, complaints, allegations, reviews, appeals, and the timers they set."""
    lines = [json.dumps(e, separators=(",", ":")) for e in simulate(40, 90, seed=3)]
    end = datetime.fromisoformat(json.loads(lines[-1])["time"].replace("Z", "+00:00"))
    (local, local_keys), (stub, stub_keys) = _both(lines, until=end + timedelta(days=31))
    assert json.loads(local)["effects"] and json.loads(local)["cases"]
    assert local == stub
    assert local_keys == stub_keys


class _FailsOnce:
    """A notifier whose first delivery raises once, then works."""

    def __init__(self, inner: FileNotifier) -> None:
        self.inner, self.calls = inner, 0

    def deliver(self, effect: Effect, *, delivered_at: str) -> None:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionRefusedError(111, "Connection refused")
        self.inner.deliver(effect, delivered_at=delivered_at)


def test_a_handler_that_raises_is_retried_by_dramatiq(tmp_path: Path) -> None:
    """The failed message goes to the StubBroker's worker: its retry sends what is left."""
    app = _app(min_backoff_ms=1, max_backoff_ms=10)
    notices = tmp_path / "notices.jsonl"
    notifier = app.engine.notifier = _FailsOnce(FileNotifier(notices))
    with Processor(app) as processor:
        report = processor.run(jsonl([post("p1", "m1", "I'll hurt your kid")]).splitlines())
    sent = [json.loads(line)["effect_id"] for line in notices.read_text().splitlines()]
    assert sorted(sent) == sorted(e["effect_id"] for e in report["effects"])
    assert notifier.calls == len(sent) + 1  # the failed call, then each notice once
    assert app.store.outbox_pending() == 0


class _Seen(dramatiq.Middleware):  # type: ignore[misc]
    def __init__(self) -> None:
        self.actors: list[str] = []

    def after_process_message(self, broker: Any, message: Any, **_: Any) -> None:
        self.actors.append(message.actor_name)


def test_a_middleware_of_its_own_keeps_the_broker_path() -> None:
    """Metrics and other middleware added to the app's broker still see every message."""
    plain, metered = _app(), _app()
    seen = _Seen()
    metered.broker.add_middleware(seen)
    lines = jsonl([post("p1", "m1", "this is shit")]).splitlines()
    with Processor(plain) as local, Processor(metered) as stub:
        assert local.run(lines) == stub.run(lines)
        assert (local.via_broker, stub.via_broker) == (False, True)
    assert seen.actors == ["handle_event", "deliver"]


def test_the_engine_gets_its_dispatch_back_after_process() -> None:
    app = _app()
    dispatch = app.engine.dispatch
    with Processor(app) as processor:
        processor.run(jsonl([post("p1", "m1", "hello")]).splitlines())
        assert app.engine.dispatch is not dispatch
    assert app.engine.dispatch is dispatch
