"""``App.publish`` on the real Redis, with a real worker: bad input waits in the
quarantine with its bytes; a good event published beside it is decided."""

from __future__ import annotations

import json
from collections.abc import Callable
from subprocess import Popen

import pytest
from esafety.events.errors import InvalidEvent

from tests.helpers import post
from tests.integration.test_reliability_kit import app_for, wait_drained

pytestmark = pytest.mark.integration


def test_publish_quarantines_bad_input_and_sends_good(
    worker_env: dict[str, str], start_workers: Callable[..., Popen[bytes]]
) -> None:
    app = app_for(worker_env)
    hostile = b'{"specversion": "1.0", "id": 5, "type": "esafety.post.submitted"}\x00'
    with pytest.raises(InvalidEvent):
        app.publish(hostile)
    good = app.publish(json.dumps(post("p-app-1", "m-app-1", "see you at the match")))
    start_workers("--processes", "1", "--threads", "2")
    report = wait_drained(app)
    assert report["events"]["accepted"] == 1
    [entry] = app.store.quarantine_entries(raw=True)
    assert entry["raw"] == hostile and entry["stage"] == "publish"
    assert app.store.tag_of(f"post:{good.data.post_id}") is not None  # type: ignore[union-attr]
