"""One store contract, run on fakeredis (the Lua script and the Python commit) and on the
real Redis (the Lua script). ``test_commit_equivalence.py`` compares the two commits."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime

import fakeredis
import pytest
import redis
from esafety.events import parse_event
from esafety.workers.keys import Keys
from esafety.workers.store import RedisStore
from esafety.workflows import Registers, decide, default_policy

from tests.conftest import check_redis
from tests.helpers import post

NOW = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _commit_post(
    store: RedisStore,
    text: str,
    event_id: str,
    post_id: str,
    plans: list[dict] | None = None,
    member: str = "m1",
) -> str:
    event = parse_event(post(post_id, member, text, id=event_id))
    tag = f"m:{member}"
    loaded = store.load(
        tag, case_id=f"post:{post_id}", member_id=member, linked_case=None, children=()
    )
    decision = decide(loaded.case, event, default_policy(), Registers(), NOW, member=loaded.member)
    checks = [
        [store.keys.case(tag, f"post:{post_id}"), loaded.case.version if loaded.case else 0],
        [store.keys.member(tag, member), loaded.member.version if loaded.member else 0],
    ]
    plan = store.decision_plan(
        decision,
        tag=tag,
        seen=store.keys.seen(tag, event.source, event.id),
        checks=checks,
        counter="accepted",
        indexed=(
            loaded.case.case_id if loaded.case else None,
            loaded.member.member_id if loaded.member else None,
        ),
        origin=(event.source, event.id),
    )
    if plans is not None:
        plans.append(plan)
    return store.commit(plan, [c[0] for c in checks]).status


class StoreContract:
    """Subclasses provide ``store``."""

    def test_commit_writes_case_member_audit_and_outbox(self, store: RedisStore) -> None:
        assert _commit_post(store, "shit", "e1", "p1") == "ok"
        case = store.case("post:p1")
        assert case is not None and case.outcome.value == "warned"
        member = store.member("m1")
        assert member is not None and member.warnings == 1
        assert [e.trigger for e in store.audit("post:p1")] == ["screen", "warn", "close"]
        assert {e.kind.value for e in store.effects()} == {"delete_post", "warning_notice"}
        assert store.outbox_pending() == 2

    def test_an_index_entry_is_written_once_with_its_record(self, store: RedisStore) -> None:
        """The member's index entry comes with its first record; a later commit for the
        member, read from the store first, does not write it again, and it still finds it."""
        plans: list[dict] = []
        assert _commit_post(store, "shit", "e1", "p1", plans) == "ok"
        assert _commit_post(store, "hello all", "e2", "p2", plans) == "ok"
        index = [[op[0], op[1]] for plan in plans for op in plan["hsets"]]
        assert index.count([store.keys.members, "m1"]) == 1
        assert index.count([store.keys.cases, "post:p2"]) == 1
        member = store.member("m1")
        assert member is not None and member.warnings == 1
        assert store.case("post:p2") is not None

    def test_one_source_and_id_is_one_event_on_any_aggregate(self, store: RedisStore) -> None:
        """Issue 5: dedup by the CloudEvents pair. The same (source, id) republished about
        another member (an id reused with other content) is a duplicate, not a second
        event; the first one's redelivery still replays as before."""
        assert _commit_post(store, "shit", "e1", "p1") == "ok"
        assert _commit_post(store, "shit", "e1", "p2", member="m2") == "dup"
        assert store.member("m2") is None and store.case("post:p2") is None
        assert store.stats()["duplicates"] == 1
        assert _commit_post(store, "shit", "e1", "p1") == "dup"
        assert _commit_post(store, "shit", "e2", "p2", member="m2") == "ok"
        member = store.member("m1")
        assert member is not None and member.warnings == 1

    def test_redelivered_event_changes_nothing(self, store: RedisStore) -> None:
        assert _commit_post(store, "shit", "e1", "p1") == "ok"
        before = (store.member("m1"), store.effects(), store.audit("post:p1"))
        plan_status = _commit_post(store, "shit", "e1", "p1")
        assert plan_status == "dup"
        assert (store.member("m1"), store.effects(), store.audit("post:p1")) == before
        assert store.stats()["duplicates"] == 1 and store.stats()["accepted"] == 1

    def test_stale_version_is_a_conflict_and_writes_nothing(self, store: RedisStore) -> None:
        assert _commit_post(store, "shit", "e1", "p1") == "ok"
        key = store.keys.member("m:m1", "m1")
        result = store.commit(
            {"seen": "", "checks": [[key, 0]], "sets": [[key, '{"version": 99}']]}, [key]
        )
        assert result.status == "conflict" and result.key == key
        member = store.member("m1")
        assert member is not None and member.version == 1

    def test_outbox_reads_and_delivery_mark(self, store: RedisStore) -> None:
        assert _commit_post(store, "shit", "e1", "p1") == "ok"
        assert store.tag_of("post:p1") == "m:m1" and store.tag_of("post:nope") is None
        first = store.effects()[0]
        assert store.effect("m:m1", first.effect_id) == first
        assert store.effect("m:m1", "nope") is None
        assert not store.is_delivered("m:m1", first.effect_id)
        store.mark_delivered("m:m1", first.effect_id)
        assert store.is_delivered("m:m1", first.effect_id)
        assert store.outbox_pending() == 1
        assert store.register("child-x") is None

    def test_next_due_is_the_earliest_timer_up_to_a_time(self, store: RedisStore) -> None:
        assert store.next_due(2_000_000_000_000) is None
        store.client.zadd(
            store.keys.timers, {"late": 1_700_000_000_999, "early": 1_700_000_000_123}
        )
        assert store.next_due(2_000_000_000_000) == ("early", 1_700_000_000_123)
        assert store.next_due(1_700_000_000_123) == ("early", 1_700_000_000_123)
        assert store.next_due(1_700_000_000_122) is None

    def test_quarantine_keeps_raw_bytes_once(self, store: RedisStore) -> None:
        raw = b"\xff not json"
        assert store.quarantine(raw=raw, error="bad", stage="consume", at=NOW, dedup="x")
        assert not store.quarantine(raw=raw, error="bad", stage="consume", at=NOW, dedup="x")
        [entry] = store.quarantine_entries(raw=True)
        assert entry["raw"] == raw and entry["error"] == "bad"
        assert store.stats()["quarantined"] == 1
        # the stream entry holds a hash and a length, never the bytes: those are in the
        # evidence key space, under the entry's id, written by the same script
        [(entry_id, fields)] = store.client.xrange(store.keys.quarantine)
        assert b"raw" not in fields and raw not in fields.values()
        assert fields[b"sha256"] == hashlib.sha256(raw).hexdigest().encode()
        assert fields[b"size"] == str(len(raw)).encode()
        assert store.keys.quarantine_raw.startswith(f"{store.keys.prefix}:ev:")
        assert store.client.hgetall(store.keys.quarantine_raw) == {entry_id: raw}
        assert [e.get("raw") for e in store.quarantine_entries()] == [None]  # not read

    def test_quarantine_reads_entries_written_with_inline_raw(self, store: RedisStore) -> None:
        """An entry from before the bytes moved to the evidence keys still reads."""
        store.client.xadd(
            store.keys.quarantine,
            {"raw": b"old bytes", "error": "bad", "stage": "publish", "at": "t", "line": "3"},
        )
        [entry] = store.quarantine_entries(raw=True)
        assert (entry["raw"], entry["size"], entry["line"]) == (b"old bytes", 9, 3)
        assert entry["sha256"] == hashlib.sha256(b"old bytes").hexdigest()


class TestFakeRedisStore(StoreContract):
    """Both commits on fakeredis: the embedded default (Python) and the script (kept covered)."""

    @pytest.fixture(params=["python", "lua"])
    def store(self, request: pytest.FixtureRequest) -> RedisStore:
        client = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        return RedisStore(client, Keys(f"c{uuid.uuid4().hex[:8]}"), applier=request.param)

    def test_the_commit_runs_the_script_only_on_lua(self, store: RedisStore) -> None:
        assert _commit_post(store, "shit", "e1", "p1") == "ok"
        [loaded] = store.client.script_exists(store._commit.sha)
        assert loaded == (store.applier == "lua")


class TestRealRedisStore(StoreContract):
    @pytest.fixture
    def store(self, prefix: str, real_redis: redis.Redis) -> RedisStore:
        check_redis()
        return RedisStore(real_redis, Keys(prefix))


def test_fakeredis_commits_from_python_by_default_and_a_server_with_lua() -> None:
    assert RedisStore(fakeredis.FakeRedis()).applier == "python"
    assert RedisStore(fakeredis.FakeStrictRedis()).applier == "python"
    assert RedisStore(redis.Redis()).applier == "lua"  # no connection is made


def test_the_python_commit_is_refused_on_a_server() -> None:
    with pytest.raises(ValueError, match="fakeredis only"):
        RedisStore(redis.Redis(), applier="python")
