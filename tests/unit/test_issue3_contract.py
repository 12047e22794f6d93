"""Issue 3 bullets that had no test of their own: the shared Machine, no broker at import,
one audit log line per audit entry, and the ``schema`` command."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

import structlog
import transitions
from esafety.events.models import EVENT_MODELS
from esafety.workers.cli.main import build_cli
from esafety.workers.logs import configure_logging
from esafety.workers.process import Processor
from esafety.workflows import machine
from typer.testing import CliRunner

from esafety.testing import fake_app
from tests.helpers import envelope, jsonl, post


def _mixed_events() -> list[dict]:
    """Many cases of several kinds: posts (clean, warned, suspended, threat), a complaint,
    an allegation and a review, so every trigger of the machine runs at least once."""
    events = [
        post(f"p{i}", f"m{i % 7}", "what a load of shit" if i % 3 else "hi") for i in range(40)
    ]
    events.append(post("pt", "mt", "I'll hurt your kid if you post that again"))
    events.append(
        envelope(
            "esafety.complaint.received",
            {
                "complaint_id": "c1",
                "complainant_ref": "cr1",
                "text": "upset",
                "about_post_id": "p0",
            },
        )
    )
    events.append(
        envelope(
            "esafety.allegation.reported",
            {
                "allegation_id": "a1",
                "reporter_ref": "s1",
                "category": "other",
                "subject_role": "staff",
            },
        )
    )
    events.append(
        envelope(
            "esafety.case.reviewed",
            {"case_id": "allegation:a1", "reviewer_ref": "dsl", "decision": "acknowledge"},
        )
    )
    return events


def test_the_machine_is_built_once_per_process_not_per_event_or_case(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 3: one Machine per process, shared; no Machine and no add/remove_model per event."""
    built: list[object] = []
    added: list[object] = []
    removed: list[object] = []
    real_init = transitions.Machine.__init__
    real_add = transitions.Machine.add_model
    real_remove = transitions.Machine.remove_model

    def counting_init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(self)
        real_init(self, *args, **kwargs)

    def counting_add(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        added.append(args)
        return real_add(self, *args, **kwargs)

    def counting_remove(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        removed.append(args)
        return real_remove(self, *args, **kwargs)

    monkeypatch.setattr(transitions.Machine, "__init__", counting_init)
    monkeypatch.setattr(transitions.Machine, "add_model", counting_add)
    monkeypatch.setattr(transitions.Machine, "remove_model", counting_remove)
    monkeypatch.setattr(machine, "_STEPS", {})  # make every (state, trigger) ask the Machine
    app = fake_app()
    with Processor(app) as processor:
        report = processor.run(jsonl(_mixed_events()).splitlines())
    assert len(report["cases"]) >= 43 and report["events"]["quarantined"] == 0
    assert machine._STEPS, "the run must have stepped cases through the machine"
    assert built == []  # the module-level Machine served every case
    assert len(added) <= 1 and removed == []  # at most this thread's cursor, once
    assert isinstance(machine._MACHINE, transitions.Machine)


def test_importing_every_module_sets_up_no_broker() -> None:
    """Issue 3: no broker set up as an import side effect (a fresh interpreter, all modules)."""
    code = textwrap.dedent(
        """
        import importlib, pkgutil
        import dramatiq.broker
        names = []
        for package in ("esafety.events", "esafety.workflows", "esafety.workers",
                        "esafety.workers.cli"):
            module = importlib.import_module(package)
            for info in pkgutil.iter_modules(module.__path__):
                importlib.import_module(f"{package}.{info.name}")
                names.append(info.name)
        assert len(names) > 30, names
        print(repr(dramatiq.broker.global_broker))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "None"


def test_each_audit_entry_is_one_structlog_line_in_stream_order() -> None:
    """Issue 3: audit entries in a Redis stream per case and as one structlog line each."""
    configure_logging("json", "INFO", io.StringIO())  # an earlier test may have left WARNING
    app = fake_app()
    with structlog.testing.capture_logs() as logs, Processor(app) as processor:
        processor.run(jsonl(_mixed_events()).splitlines())
    lines = [line for line in logs if line.get("event") == "audit.step"]
    stored = [entry for _, chain in app.store.iter_audit() for entry in chain]
    assert len(stored) > 43
    assert sorted((line["case_id"], line["seq"], line["hash"]) for line in lines) == sorted(
        (e.case_id, e.seq, e.hash) for e in stored
    )
    for case_id, chain in app.store.iter_audit():
        logged = [line["seq"] for line in lines if line["case_id"] == case_id]
        assert logged == [e.seq for e in chain] == list(range(1, len(chain) + 1))


def test_schema_command_prints_one_json_schema_for_every_event_type() -> None:
    result = CliRunner().invoke(build_cli(), ["schema"])
    assert result.exit_code == 0, result.output
    schema = json.loads(result.stdout)
    assert schema["$schema"].endswith("2020-12/schema")
    types = {option["properties"]["type"]["const"] for option in schema["oneOf"]}
    assert types == set(EVENT_MODELS) and len(types) == 9
    for option in schema["oneOf"]:
        assert {"specversion", "id", "source", "type", "data"} <= set(option["required"])


class _Recorded:
    """An actor that notes each call (name, args) before running it."""

    def __init__(self, actor: Any, calls: list[tuple[str, tuple[Any, ...]]]) -> None:
        self.actor, self.calls = actor, calls

    def __call__(self, *args: Any) -> Any:
        self.calls.append((self.actor.actor_name, args))
        return self.actor(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.actor, name)


def _dump(client: Any) -> dict[bytes, Any]:
    """Every key of the fake Redis with its value, by type."""
    out: dict[bytes, Any] = {}
    for key in client.scan_iter(count=1000):
        kind = client.type(key).decode()
        if kind == "string":
            out[key] = client.get(key)
        elif kind == "hash":
            out[key] = client.hgetall(key)
        elif kind == "set":
            out[key] = client.smembers(key)
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == "stream":
            out[key] = client.xrange(key)
        else:  # pragma: no cover - a type the store does not write
            raise AssertionError(kind)
    return out


def test_every_actor_run_again_with_the_same_message_changes_nothing() -> None:
    """Issue 3: dramatiq delivers at least once, so every actor must be idempotent.
    Each message of a run (events, timers, commands, deliveries) is run twice more:
    no key changes but the duplicate counters, and no effect is delivered again."""
    events = [
        *_mixed_events(),
        envelope(
            "esafety.appeal.lodged",
            {"appeal_id": "ap1", "member_id": "m1", "case_id": "post:p1", "text": "sorry"},
        ),
        envelope(
            "esafety.case.reviewed",
            {"case_id": "appeal:ap1", "reviewer_ref": "dsl", "decision": "overturn"},
        ),
        envelope("esafety.member.removal_requested", {"member_id": "m2"}),
    ]
    app = fake_app()
    calls: list[tuple[str, tuple[Any, ...]]] = []
    sent: list[str] = []
    notifier = app.engine.notifier
    real_deliver = notifier.deliver

    def counting_deliver(effect: Any, **kwargs: Any) -> None:
        sent.append(effect.effect_id)
        real_deliver(effect, **kwargs)

    notifier.deliver = counting_deliver  # type: ignore[method-assign]
    app.actors = {name: _Recorded(actor, calls) for name, actor in app.actors.items()}  # type: ignore[misc]
    with Processor(app) as processor:
        processor.run(jsonl(events).splitlines(), until=datetime(2027, 3, 1, tzinfo=UTC))
    assert {name for name, _ in calls} == {"handle_event", "fire_timer", "apply_command", "deliver"}
    assert len(sent) == len(set(sent)) > 10
    before = _dump(app.store.client)
    first = list(calls)
    for _ in range(2):
        for name, args in first:
            app.actors[name].actor(*args)  # type: ignore[attr-defined]
    after = _dump(app.store.client)
    changed = {key for key in before.keys() | after.keys() if before.get(key) != after.get(key)}
    assert changed <= {app.store.keys.stats.encode()}, sorted(changed)
    assert len(sent) == len(set(sent))  # no effect sent twice
