"""The bench's store floor (workers/bench_floor.py): the engine's commit for a post,
renamed a message, nothing decided. On the embedded store (fakeredis, commit.lua)."""

from __future__ import annotations

import json

import pytest
from esafety.workers.app import App
from esafety.workers.bench import bench_events
from esafety.workers.bench_floor import StoreFloor, install_floor


def _first(kind: str) -> str:
    return next(line for line in bench_events(300) if f'"{kind}"' in line)


def _audit_streams(app: App) -> set[bytes]:
    return set(app.store.client.scan_iter(match=f"{app.store.keys.prefix}*audit*"))


def test_each_message_commits_the_templates_writes_under_its_own_ids(embedded_app: App) -> None:
    template = _first("esafety.post.submitted")
    floor = install_floor(embedded_app, template)
    assert embedded_app.engine.handle_event is floor  # the actor now runs the floor
    before = len(_audit_streams(embedded_app))
    assert floor("body one") == "ok"
    assert floor("body two") == "ok"
    assert len(_audit_streams(embedded_app)) == before + 2  # one new case a message
    fields = json.loads(template)
    for old in (fields["id"], fields["data"]["post_id"], fields["data"]["member_id"]):
        assert old not in floor.plan_json and old not in floor.keys_json  # all renamed
    assert "{member}" in floor.plan_json and "{post}" in floor.keys_json


def test_the_same_body_again_is_a_duplicate_as_in_the_engine(embedded_app: App) -> None:
    floor = StoreFloor.from_template(embedded_app, _first("esafety.post.submitted"))
    assert floor("again") == "ok"
    assert floor("again") == "dup"


def test_a_template_that_is_not_a_post_is_refused(embedded_app: App) -> None:
    with pytest.raises(ValueError, match="post"):
        StoreFloor.from_template(embedded_app, _first("esafety.guardian.registered"))
