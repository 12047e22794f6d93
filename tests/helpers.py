"""Small builders for test events (CloudEvents dicts and JSONL lines)."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

_ids = itertools.count(1)
BASE = datetime(2026, 11, 24, 10, 0)


def envelope(
    type_: str,
    data: dict[str, Any],
    *,
    id: str | None = None,
    source: str = "facebook/group/test",
    minute: int | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    number = next(_ids)
    if time is None:
        moment = BASE + timedelta(minutes=number if minute is None else minute)
        time = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "specversion": "1.0",
        "id": id or f"evt-{number}",
        "source": source,
        "type": type_,
        "time": time,
        "datacontenttype": "application/json",
        "data": data,
    }


def post(post_id: str, member_id: str, text: str, **extra: Any) -> dict[str, Any]:
    meta = {k: extra.pop(k) for k in ("id", "source", "minute", "time") if k in extra}
    return envelope(
        "esafety.post.submitted",
        {"post_id": post_id, "member_id": member_id, "text": text, **extra},
        **meta,
    )


def jsonl(events: list[dict[str, Any] | str]) -> str:
    return "\n".join(e if isinstance(e, str) else json.dumps(e) for e in events) + "\n"
