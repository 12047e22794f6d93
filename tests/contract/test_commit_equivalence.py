"""The Python commit (fakeredis, embedded) and ``commit.lua`` give the same replies and
leave the same keys on the same plans: duplicates, conflicts, versions, the order of the
writes, ``seen`` written last and not at all when a write fails.

Each side has its own fake server; after every plan the two replies are compared, and
at the end every key (type and content; a stream by its entries' fields, since entry
ids come from the wall clock). Plans: a table of the cases the engine relies on, any
plans over a few keys (hypothesis), and the engine's own on the demo file.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
from datetime import datetime
from typing import Any

import fakeredis
import pytest
import redis
from esafety.workers.clock import VirtualClock
from esafety.workers.engine import Engine
from esafety.workers.notifier import MemoryNotifier
from esafety.workers.report import build_report
from esafety.workers.store import Applier, CommitResult, RedisStore
from esafety.workflows.policy import default_policy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import EXAMPLES

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
APPLIERS: tuple[Applier, ...] = ("lua", "python")


def _stores() -> dict[str, RedisStore]:
    return {
        name: RedisStore(fakeredis.FakeRedis(server=fakeredis.FakeServer()), applier=name)
        for name in APPLIERS
    }


def dump(client: redis.Redis) -> dict[bytes, tuple[str, Any]]:
    """Every key with its type and content (stream entry ids left out: wall-clock time)."""
    out: dict[bytes, tuple[str, Any]] = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key).decode()
        value: Any
        if kind == "string":
            value = client.get(key)
        elif kind == "hash" and key.endswith(b":ev:quarantine"):
            value = sorted(client.hvals(key))  # quarantined bytes by stream entry id
        elif kind == "hash":
            value = sorted(client.hgetall(key).items())
        elif kind == "set":
            value = sorted(client.smembers(key))
        elif kind == "zset":
            value = client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = client.lrange(key, 0, -1)
        elif kind == "stream":
            value = [sorted(fields.items()) for _, fields in client.xrange(key)]
        else:  # pragma: no cover - the plans write no other type
            raise AssertionError(f"unexpected type {kind} at {key!r}")
        out[key] = (kind, value)
    return out


def run_both(plans: list[dict[str, Any]]) -> list[CommitResult]:
    """Apply the plans in order on both commits; replies and keys must match."""
    stores = _stores()
    replies: list[CommitResult] = []
    for plan in plans:
        by_name = {
            name: store.commit(json.loads(json.dumps(plan)), []) for name, store in stores.items()
        }
        assert by_name["python"] == by_name["lua"], plan
        replies.append(by_name["lua"])
    assert dump(stores["python"].client) == dump(stores["lua"].client)
    return replies


def _aggregate(version: int | None) -> str:
    return json.dumps({"x": 1} if version is None else {"version": version, "x": 1})


# -- table-driven: the cases the engine relies on ------------------------------------


def test_first_delivery_writes_everything_and_seen() -> None:
    plan = {
        "seen": "seen:1",
        "checks": [["case:1", 0], ["member:1", 0]],
        "sets": [["case:1", _aggregate(1)], ["member:1", _aggregate(1)]],
        "xadds": [["audit:1", "a"], ["audit:1", "b"], ["archive", "ev"]],
        "hsets": [["cases", "1", "t"], ["outbox", "e1", "x"], ["cases", "2", "t"]],
        "sadds": [["pending", "t|e1"], ["pending", "t|e2"]],
        "zadds": [["timers", 1_700_000_000_000, "t1"], ["timers", 5, "t2"]],
        "rpushes": [["effects", "e1"], ["effects", "e2"]],
        "hincrs": [["stats", "accepted", 1], ["stats", "accepted", 2]],
        "dup_hincrs": [["stats", "duplicates", 1]],
        "result": '{"tag": "t"}',
    }
    [reply] = run_both([plan])
    assert reply == CommitResult("ok", {"tag": "t"})


def test_redelivery_applies_only_dup_hincrs_and_returns_the_first_result() -> None:
    first = {
        "seen": "seen:1",
        "sets": [["case:1", _aggregate(1)]],
        "hincrs": [["stats", "accepted", 1]],
        "dup_hincrs": [["stats", "duplicates", 1]],
        "result": '{"first": true}',
    }
    again = {**first, "sets": [["case:1", _aggregate(2)]], "result": '{"first": false}'}
    replies = run_both([first, again, again])
    assert [r.status for r in replies] == ["ok", "dup", "dup"]
    assert replies[2].result == {"first": True}


def test_a_dup_wins_over_a_stale_version() -> None:
    first = {"seen": "seen:1", "checks": [["case:1", 0]], "sets": [["case:1", _aggregate(1)]]}
    replies = run_both([first, first])  # the second's check (0) is stale, but it was seen
    assert [r.status for r in replies] == ["ok", "dup"]


@pytest.mark.parametrize(
    ("stored", "expected", "status"),
    [
        (None, 0, "ok"),  # no key: version 0
        (_aggregate(None), 0, "ok"),  # no "version" field: 0
        (_aggregate(3), 3, "ok"),
        (_aggregate(3), 2, "conflict"),
        (_aggregate(0), 1, "conflict"),
        ('{"version": false}', 0, "ok"),  # Lua's `or 0`
        ('{"version": "3"}', 3, "conflict"),  # a string is no number
        ('{"version": true}', 1, "conflict"),  # nor is a boolean
        ('{"version": 2.0}', 2, "ok"),  # one number type
        ("[1, 2]", 0, "ok"),
    ],
)
def test_version_checks(stored: str | None, expected: int, status: str) -> None:
    setup = [{"sets": [["case:1", stored]]}] if stored is not None else []
    plan = {
        "seen": "seen:2",
        "checks": [["member:1", 0], ["case:1", expected]],
        "sets": [["case:1", _aggregate(expected + 1)]],
        "hincrs": [["stats", "accepted", 1]],
    }
    replies = run_both([*setup, plan])
    assert replies[-1].status == status
    if status == "conflict":
        assert replies[-1].key == "case:1"


def test_a_conflict_writes_nothing_not_even_seen() -> None:
    setup = {"sets": [["case:1", _aggregate(5)]]}
    plan = {"seen": "seen:1", "checks": [["case:1", 4]], "hsets": [["cases", "1", "t"]]}
    stores = _stores()
    for store in stores.values():
        store.commit(dict(setup), [])
        before = dump(store.client)
        assert store.commit(dict(plan), []).status == "conflict"
        assert dump(store.client) == before


def test_a_failing_write_stops_the_commit_there_and_leaves_the_event_unseen() -> None:
    """A write that fails (a string where the plan HSETs, a bug) stops both commits at
    that call: the writes before it stay, none after it, and no ``seen``, so a redelivery
    is not dropped."""
    setup = {"sets": [["oops", "a string"]]}
    plan = {
        "seen": "seen:1",
        "sets": [["case:1", _aggregate(1)]],
        "hsets": [["cases", "1", "t"], ["oops", "f", "v"]],
        "rpushes": [["effects", "e1"]],
        "hincrs": [["stats", "accepted", 1]],
    }
    stores = _stores()
    for store in stores.values():
        store.commit(dict(setup), [])
        with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
            store.commit(dict(plan), [])
        assert store.client.get("seen:1") is None, store.applier
        assert store.client.hget("cases", "1") == b"t" and not store.client.exists("effects")
    assert dump(stores["python"].client) == dump(stores["lua"].client)


def test_dels_and_zrems_run_after_the_other_writes() -> None:
    setup = {"sets": [["ev:1", "text"]], "zadds": [["closed", 1, "c1"], ["closed", 2, "c2"]]}
    plan = {
        "seen": "op:1",
        "hsets": [["ev:1-meta", "a", "b"]],
        "zrems": [["closed", "c1"], ["closed", "nope"]],
        "dels": [["ev:1"], ["ev:1-meta"]],  # the HSET above, then its key removed
    }
    run_both([setup, plan])


# -- property: any sequence of plans over a few keys ---------------------------------

STRINGS = [f"s:{i}" for i in range(3)]  # aggregates: checked, set, deleted
SEEN = [f"seen:{i}" for i in range(3)]
KEYS = {
    "hsets": ["h:0", "h:1"],
    "sadds": ["set:0", "set:1"],
    "zadds": ["z:0", "z:1"],
    "zrems": ["z:0", "z:1"],
    "rpushes": ["l:0", "l:1"],
    "xadds": ["x:0", "x:1"],
}
small = st.integers(min_value=0, max_value=3)
word = st.sampled_from(["a", "b", "c", ""])
aggregate = st.one_of(
    small.map(_aggregate),
    st.just(_aggregate(None)),
    st.just("[]"),
)


def _ops(name: str, values: st.SearchStrategy[list[Any]]) -> st.SearchStrategy[list[Any]]:
    key = st.sampled_from(KEYS[name])
    return st.lists(st.tuples(key, values).map(lambda kv: [kv[0], *kv[1]]), max_size=4)


plans = st.fixed_dictionaries(
    {
        "seen": st.sampled_from(["", *SEEN]),
        "checks": st.lists(st.tuples(st.sampled_from(STRINGS), small).map(list), max_size=2),
        "sets": st.lists(st.tuples(st.sampled_from(STRINGS), aggregate).map(list), max_size=3),
        "xadds": _ops("xadds", st.tuples(word).map(list)),
        "hsets": _ops("hsets", st.tuples(word, word).map(list)),
        "sadds": _ops("sadds", st.tuples(word).map(list)),
        "zadds": _ops("zadds", st.tuples(st.integers(-5, 1_700_000_000_000), word).map(list)),
        "zrems": _ops("zrems", st.tuples(word).map(list)),
        "rpushes": _ops("rpushes", st.tuples(word).map(list)),
        "hincrs": st.lists(st.tuples(st.just("stats"), word, small).map(list), max_size=2),
        "dup_hincrs": st.lists(st.tuples(st.just("stats"), word, small).map(list), max_size=2),
        "dels": st.lists(
            st.sampled_from([*STRINGS, *(k for keys in KEYS.values() for k in keys)]).map(
                lambda k: [k]
            ),
            max_size=2,
        ),
        "result": st.dictionaries(word, small, max_size=2).map(json.dumps),
    }
)


@PROPERTY
@given(st.lists(plans, min_size=1, max_size=6))
def test_any_plans_give_the_same_replies_and_keys(sequence: list[dict[str, Any]]) -> None:
    replies = run_both(sequence)
    assert len(replies) == len(sequence)


# -- atomicity: threads racing on one aggregate ----------------------------------------


def test_racing_commits_never_both_pass_one_version_check() -> None:
    """Threads, each with its own store on one fake server, read a version and commit
    version + 1 checked against it: every ok is one step (no lost update), the rest are
    conflicts. A read-check-write that interleaved would let two pass one check.

    The Python commit only: under this much thread switching, commit.lua on fakeredis
    2.40 was seen to answer "ok" for a run that wrote nothing (about one run in three
    under pytest), a fault of the fake's shared Lua runtime (the script is atomic on a
    real Redis; the embedded store no longer runs it)."""
    applier: Applier = "python"
    server = fakeredis.FakeServer()
    oks: list[int] = []

    def racer(number: int) -> None:
        store = RedisStore(fakeredis.FakeRedis(server=server), applier=applier)
        for attempt in range(40):
            raw = store.client.get("agg")
            version = json.loads(raw)["version"] if raw else 0
            plan = {
                "seen": f"seen:{number}:{attempt}",
                "checks": [["agg", version]],
                "sets": [["agg", _aggregate(version + 1)]],
                "rpushes": [["log", f"{number}:{version + 1}"]],
            }
            if store.commit(plan, []).status == "ok":
                oks.append(version + 1)

    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: interleavings, if possible, happen
    try:
        threads = [threading.Thread(target=racer, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    client = fakeredis.FakeRedis(server=server)
    final = json.loads(client.get("agg"))["version"]
    assert sorted(oks) == list(range(1, final + 1))
    assert [int(v.split(b":")[1]) for v in client.lrange("log", 0, -1)] == list(range(1, final + 1))


# -- the engine's own plans: the demo file through both commits --------------------------


def _engine_run(applier: Applier, lines: list[str]) -> RedisStore:
    """Every line of the file through ``Engine.handle_event`` at its time (no broker,
    no timers fired): the plans a real run makes, on a fake server of its own."""
    store = RedisStore(fakeredis.FakeRedis(server=fakeredis.FakeServer()), applier=applier)
    clock = VirtualClock()
    engine = Engine(store=store, policy=default_policy(), clock=clock, notifier=MemoryNotifier())
    for number, line in enumerate(lines, start=1):
        with contextlib.suppress(ValueError, KeyError, TypeError):  # malformed: quarantined
            clock.advance_to(datetime.fromisoformat(json.loads(line)["time"]))
        engine.handle_event(line, number)
    return store


def test_the_demo_file_leaves_the_same_keys_and_report_with_either_commit() -> None:
    lines = [line for line in (EXAMPLES / "demo.jsonl").read_text().splitlines() if line.strip()]
    lua, python = (_engine_run(applier, lines) for applier in APPLIERS)
    report = build_report(python)
    assert report["cases"] and report["effects"] and report["quarantine"]
    assert json.dumps(report, sort_keys=True) == json.dumps(build_report(lua), sort_keys=True)
    assert dump(python.client) == dump(lua.client)


LEAN_COMMANDS: list[list[Any]] = [
    ["MSET", "s1", "v1", "s2", "v2"],
    ["MGET", "s1", "nope", "s2"],
    ["HSET", "h", "f1", "a", "f2", "b"],
    ["HSET", "h", "f1", "c"],
    ["HGET", "h", "f1"],
    ["HGETALL", "h"],
    ["HINCRBY", "h", "n", 3],
    ["HINCRBY", "h", "f1", 1],  # an error: not an integer
    ["SADD", "set", "a", "b"],
    ["SISMEMBER", "set", "a"],
    ["SREM", "set", "a", "b"],  # empties it: the key goes
    ["ZADD", "z", 5, "m5", 1, "m1"],
    ["ZSCORE", "z", "m5"],
    ["ZSCORE", "z", "none"],
    ["ZRANGEBYSCORE", "z", "-inf", 4, "WITHSCORES", "LIMIT", 0, 1],
    ["ZREM", "z", "m1"],
    ["RPUSH", "l", "x", "y"],
    ["XADD", "st", "*", "e", "entry"],
    ["HSET", "s1", "f", "v"],  # an error: wrong type
    ["GET", "h"],  # an error: wrong type
    ["DEL", "s2"],
    ["SET", "seen", "{}"],
]


def test_the_lean_command_runner_replies_and_writes_as_fakeredis_does() -> None:
    """``commit_python._Lean`` against fakeredis's own ``_run_command``, command by command."""
    from esafety.workers.commit_python import PythonCommit

    sides = []
    for lean in (True, False):
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        commit = PythonCommit(client)
        assert commit._lean is not None  # this fakeredis has every part
        if not lean:
            commit._lean = None
        sides.append((client, commit))
    for command in LEAN_COMMANDS:
        replies = []
        for _, commit in sides:
            try:
                replies.append(("ok", commit.run([command])[0]))
            except redis.ResponseError as exc:
                replies.append(("error", str(exc)))
        assert replies[0] == replies[1], command
    assert dump(sides[0][0]) == dump(sides[1][0])
