"""``process``'s shortcuts against the paths they replaced (``workers/process.py``).

The same file must give the same report, byte for byte, and leave the same keys,
whether each message is a call of its actor from the in-process queue or a dramatiq
message through the StubBroker and its worker thread, and whether chain heads are
signed in every commit or once at the end. The apps compared share one signing key
(each embedded app would otherwise generate its own).
"""

from __future__ import annotations

import gc
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from esafety.events import InvalidEvent, encode_event, parse_event
from esafety.events.models import EVENT_MODELS
from esafety.workers import process
from esafety.workers.app import App, build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.notifier import FileNotifier
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from esafety.workers.signing import HeadSigner
from esafety.workers.simulate import simulate
from esafety.workflows.model import Effect

from tests.conftest import EXAMPLES
from tests.helpers import jsonl, post


def _app(**settings: Any) -> App:
    return build_app(Settings(redis_url=None, **settings), embedded=True, clock=VirtualClock())


def _dump(client: redis.Redis) -> dict[bytes, Any]:
    """Every key's type and value."""
    out: dict[bytes, Any] = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key).decode()
        if kind == "string":
            value: Any = client.get(key)
        elif kind == "hash" and key.endswith(b":ev:quarantine"):
            value = sorted(client.hvals(key))  # fields are stream entry ids: wall-clock
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
        out[key] = (kind, value)
    return out


_SIGNER = HeadSigner.generate()
# (local queue, heads at the end): what process does; the broker path; heads in each commit
_PATHS = ((False, True), (True, True), (False, False), (True, False))


def _runs(
    lines: list[str], until: datetime | None = None, paths: tuple[tuple[bool, bool], ...] = _PATHS
) -> list[tuple[str, dict[bytes, Any]]]:
    runs = []
    for broker, heads_at_end in paths:
        app = _app()
        app.engine.heads = _SIGNER
        with Processor(app, broker=broker, heads_at_end=heads_at_end) as processor:
            report = processor.run(lines, until=until)
        runs.append((json.dumps(report, sort_keys=True), _dump(app.store.client)))
    return runs


def test_the_demo_gives_the_same_report_and_keys_on_every_path() -> None:
    runs = _runs((EXAMPLES / "demo.jsonl").read_text().splitlines())
    (report, keys), *others = runs
    assert any(key.endswith(b":heads") for key in keys)
    for other_report, other_keys in others:
        assert other_report == report
        assert other_keys == keys


def test_a_simulated_season_gives_the_same_report_and_keys_on_every_path() -> None:
    """Posts, complaints, allegations, reviews, appeals, and the timers they set: what
    ``process`` does against the old path (the broker, a signature in every commit)."""
    lines = [json.dumps(e, separators=(",", ":")) for e in simulate(40, 90, seed=3)]
    end = datetime.fromisoformat(json.loads(lines[-1])["time"].replace("Z", "+00:00"))
    until = end + timedelta(days=31)
    (report, keys), *others = _runs(lines, until, paths=(_PATHS[0], _PATHS[-1]))
    assert json.loads(report)["effects"] and json.loads(report)["cases"]
    for other_report, other_keys in others:
        assert other_report == report
        assert other_keys == keys


def test_heads_are_signed_when_the_work_is_done_and_the_signer_given_back() -> None:
    app = _app()
    signer = app.engine.heads
    with Processor(app) as processor:
        processor.run(jsonl([post("p1", "m1", "this is shit")]).splitlines())
        tag = app.store.tag_of("post:p1")
        assert tag is not None and app.store.client.hlen(app.store.keys.heads(tag)) == 2
        assert app.engine.heads is None  # kept aside while process runs
    assert app.engine.heads is signer


def test_a_published_body_parses_back_to_its_event() -> None:
    """What lets ``process`` hand the handler the event it parsed with the body it encoded
    (``Engine.preparsed``): the handler's own parse of that body gives the same event."""
    lines = (EXAMPLES / "demo.jsonl").read_text().splitlines()
    lines += [json.dumps(e) for e in simulate(40, 90, seed=3)]
    kinds = set()
    for line in lines:
        try:
            event = parse_event(line)
        except InvalidEvent:
            continue
        assert parse_event(encode_event(event)) == event
        kinds.add(event.type)
    assert kinds == set(EVENT_MODELS)  # every type of event


def test_the_handler_parses_a_body_it_was_not_given_an_event_for() -> None:
    app = _app()
    with Processor(app) as processor:
        processor.run(jsonl([post("p1", "m1", "hello")]).splitlines())
        assert app.engine.preparsed == {}  # each taken by its handler
        body = json.dumps(post("p2", "m1", "this is shit", id="e2"))
        assert app.engine.handle_event(body) == "ok"
    assert app.store.case("post:p2") is not None


def test_timers_left_pending_by_one_run_fire_in_the_next() -> None:
    """The timer index read at the start: a suspension set by one run expires in the next."""
    app = _app()
    lines = jsonl([post("p1", "m1", "this is shit"), post("p2", "m1", "oh fuck off", minute=1)])
    with Processor(app) as processor:
        first = processor.run(lines.splitlines())
    [timer] = first["timers"]
    assert first["members"][0]["status"] == "suspended"
    due = datetime.fromisoformat(timer["due"].replace("Z", "+00:00"))
    with Processor(app) as processor:
        assert processor.fire_due(due - timedelta(seconds=1)) == 0
        second = processor.run([], until=due)
    assert second["timers"] == []
    assert second["members"][0]["status"] == "active"


def test_run_gives_what_it_froze_back_to_the_collector_and_leaves_a_host_freeze_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(process, "_FREEZE_EVERY", 2)
    lines = jsonl([post(f"p{n}", "m1", "hello", id=f"e{n}") for n in range(5)]).splitlines()
    counts: list[int] = []
    with Processor(_app()) as processor:
        report = processor.run(lines, progress=lambda _: counts.append(gc.get_freeze_count()))
    assert report["events"]["accepted"] == 5
    assert counts[0] == 0 and max(counts) > 0  # frozen after the second line
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a host that froze its own objects (before a fork, say)
    try:
        frozen = gc.get_freeze_count()
        with Processor(_app()) as processor:
            processor.run(lines)
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


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


def test_process_exact_takes_the_workers_path_and_reports_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``process --exact`` (and ``demo``): every message through the StubBroker, every
    commit through commit.lua on fakeredis's Lua; the report is the fast path's."""
    from esafety.workers.cli import process_cmd

    seen: list[tuple[str, bool]] = []
    enter = Processor.__enter__

    def spy(self: Processor) -> Processor:
        entered = enter(self)
        seen.append((self.app.store.applier, bool(self.via_broker)))
        return entered

    monkeypatch.setattr(Processor, "__enter__", spy)
    demo = EXAMPLES / "demo.jsonl"
    _, exact = process_cmd.run_file(demo, policy=None, until=None, progress=False, exact=True)
    _, fast = process_cmd.run_file(demo, policy=None, until=None, progress=False)
    assert seen == [("lua", True), ("python", False)]
    assert exact["cases"] and json.dumps(exact, sort_keys=True) == json.dumps(fast, sort_keys=True)
