"""Hostile payloads: generators (shared with the integration run) and the embedded path.

Every generated body is invalid by construction (the generator checks it with
``parse_event`` and draws again if a mutation happened to be valid) and unique (its
index is in it), so "every one quarantined" means one quarantine entry each. The
kinds follow the issue: broken JSON, wrong types, deep nesting, huge strings,
control characters, wrong encodings; and messages that are no dramatiq message or
whose arguments do not fit the actor.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from esafety.events.envelope import parse_event
from esafety.events.errors import InvalidEvent

from esafety.testing import fake_app
from tests.conftest import NOW

__all__ = ["hostile_arguments", "hostile_bodies", "hostile_messages"]

Body = Callable[[random.Random, int], str]


def _event(i: int) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": f"hostile-{i}",
        "source": "facebook/group/hostile",
        "type": "esafety.post.submitted",
        "time": "2026-11-24T10:00:00Z",
        "data": {"post_id": f"hp-{i}", "member_id": f"hm-{i % 97}", "text": "hello"},
    }


_WRONG = (0, -1, 1.5, True, None, [], ["x"], {}, {"a": 1}, "", "x" * 3)
_PATHS = (
    ("specversion",),
    ("id",),
    ("source",),
    ("type",),
    ("time",),
    ("data",),
    ("data", "post_id"),
    ("data", "member_id"),
    ("data", "text"),
    ("data", "media"),
    ("data", "links"),
)


def _set(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


def _broken_json(rng: random.Random, i: int) -> str:
    text = json.dumps(_event(i))
    cut = rng.randint(text.index(str(i)) + len(str(i)), len(text) - 1)
    return rng.choice(
        [
            text[:cut],
            text + "}" * rng.randint(1, 3),
            text.replace('"', "'"),
            text.replace(":", "=", 1),
            text[:cut] + "\x00" + text[cut:],
        ]
    )


def _wrong_type(rng: random.Random, i: int) -> str:
    body = _event(i)
    _set(body, rng.choice(_PATHS), rng.choice(_WRONG))
    return json.dumps(body)


def _missing(rng: random.Random, i: int) -> str:
    body = _event(i)
    path = rng.choice([p for p in _PATHS if p[-1] not in {"media", "links"}])
    target = body["data"] if path[0] == "data" and len(path) == 2 else body
    target.pop(path[-1])
    return json.dumps(body)


def _deep(rng: random.Random, i: int) -> str:
    depth = rng.choice([20, 100, 400, 50_000])
    if depth > 1_000:
        return f'{{"id": "hostile-{i}", "data": ' + "[" * depth + "]" * depth + "}"
    body = _event(i)
    nested: Any = "x"
    for _ in range(depth):
        nested = [nested]
    body["data"]["text"] = nested
    return json.dumps(body)


def _huge(rng: random.Random, i: int) -> str:
    body = _event(i)
    where = rng.choice(["text", "id", "member_id", "payload", "links"])
    if where == "text":
        body["data"]["text"] = "y" * rng.randint(20_001, 60_000)
    elif where == "id":
        body["id"] = f"hostile-{i}-" + "z" * rng.randint(200, 5_000)
    elif where == "member_id":
        body["data"]["member_id"] = "m" * rng.randint(201, 5_000)
    elif where == "links":
        body["data"]["links"] = [f"https://example.org/{n}" for n in range(rng.randint(101, 500))]
    else:
        body["data"]["text"] = "w" * 10_000
        body["padding"] = "p" * 300_000
    return json.dumps(body)


def _control(rng: random.Random, i: int) -> str:
    body = _event(i)
    char = rng.choice(["\x00", "\x1b[31m", "\x07", "\x7f", "\n", "\u0085", "\x1f"])
    field = rng.choice([("id",), ("source",), ("data", "post_id"), ("data", "member_id")])
    value = body[field[0]] if len(field) == 1 else body["data"][field[1]]
    _set(body, field, value + char)
    raw_in_string = json.dumps(_event(i)).replace("hello", "hel\x01lo")
    return rng.choice([json.dumps(body), raw_in_string])


def _encoding(rng: random.Random, i: int) -> str:
    text = json.dumps(_event(i), ensure_ascii=False).replace("hello", "café ∑")
    return rng.choice(
        [
            text.encode("latin-1", "replace").decode("utf-8", "surrogateescape"),
            text.encode("utf-16").decode("latin-1"),
            text.replace("hello", "\ud800"),
            json.dumps(_event(i)).replace("hello", "\\udc00"),
            "\ufeff" + text,
        ]
    )


def _envelope(rng: random.Random, i: int) -> str:
    body = _event(i)
    change = rng.randrange(7)
    if change == 0:
        body["type"] = f"esafety.unknown.{i}"
    elif change == 1:
        body["specversion"] = rng.choice(["0.3", "2.0", "1"])
    elif change == 2:
        body["time"] = rng.choice(["yesterday", "2026-13-01T00:00:00Z", "2026-11-24T10:00:00"])
    elif change == 3:
        body["data"]["unexpected"] = "x"
    elif change == 4:
        body["Bad-Extension"] = "x"
    elif change == 5:
        return json.dumps(body)[:-1] + f', "id": "hostile-dup-{i}"}}'
    else:
        body["time"] = "0001-01-01T00:00:00+01:00"
    return json.dumps(body)


def _not_object(rng: random.Random, i: int) -> str:
    return json.dumps(rng.choice([[i, "x"], f"hostile {i}", i + 0.5, [None] * (i % 7 + 1)]))


BODIES: dict[str, Body] = {
    "broken_json": _broken_json,
    "wrong_type": _wrong_type,
    "missing_field": _missing,
    "deep_nesting": _deep,
    "huge_string": _huge,
    "control_chars": _control,
    "wrong_encoding": _encoding,
    "bad_envelope": _envelope,
    "not_an_object": _not_object,
}


def _invalid(body: str) -> bool:
    try:
        parse_event(body)
    except InvalidEvent:
        return True
    return False


def hostile_bodies(count: int, seed: int = 5, offset: int = 0) -> list[tuple[str, str]]:
    """``count`` distinct invalid event bodies, (kind, body), in a seeded order."""
    rng = random.Random(seed)
    kinds = sorted(BODIES)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    i = offset
    while len(out) < count:
        kind = kinds[len(out) % len(kinds)]
        body = BODIES[kind](rng, i)
        i += 1
        if body not in seen and _invalid(body):
            seen.add(body)
            out.append((kind, body))
    return out


def hostile_messages(count: int, seed: int = 7, queue: str = "events") -> list[tuple[str, bytes]]:
    """Bytes to write straight into a dramatiq queue: no message, or not one for our actors."""
    rng = random.Random(seed)
    out: list[tuple[str, bytes]] = []
    for i in range(count):
        good = {
            "queue_name": queue,
            "actor_name": "handle_event",
            "args": [json.dumps(_event(i))],
            "kwargs": {},
            "options": {},
            "message_id": f"hostile-message-{seed}-{i}",
            "message_timestamp": 1,
        }
        bad = copy.deepcopy(good)
        kind = ["bytes", "utf16", "truncated", "fields", "actor", "queue", "options", "args"][i % 8]
        if kind == "bytes":
            out.append((kind, f"{i}:".encode() + rng.randbytes(rng.randint(0, 200))))
            continue
        if kind == "utf16":
            out.append((kind, json.dumps(good).encode("utf-16")))
            continue
        if kind == "truncated":
            text = json.dumps(good).encode()
            out.append((kind, text[: rng.randint(len(text) // 2, len(text) - 1)]))
            continue
        if kind == "fields":
            bad[rng.choice(["args", "kwargs", "options", "message_timestamp"])] = "oops"
        elif kind == "actor":
            bad["actor_name"] = rng.choice(["nobody", "deliver", "", "__import__"])
        elif kind == "queue":
            bad["queue_name"] = rng.choice(["timers", "events.XQ", "default"])
        elif kind == "options":
            bad["options"] = rng.choice(
                [{"retries": "many"}, {"pipe_target": {"x": 1}}, {"max_retries": None}]
            )
        else:
            bad["args"] = rng.choice([[i], [None, None, None], [{"event": i}], []])
        out.append((kind, json.dumps(bad).encode()))
    return out


def hostile_arguments(count: int) -> list[tuple[str, tuple[Any, ...]]]:
    """(actor, args) sent through dramatiq itself, but not what the actor takes."""
    shapes: list[Callable[[int], tuple[str, tuple[Any, ...]]]] = [
        lambda i: ("handle_event", (i,)),
        lambda i: ("handle_event", (f"{{}} {i}", "line")),
        lambda i: ("fire_timer", (f"garbage {i}",)),
        lambda i: ("fire_timer", ({"timer": i},)),
        lambda i: ("apply_command", (f'{{"command_id": "c{i}"}}',)),
        lambda i: ("deliver", (i, "eff")),
        lambda i: ("deliver", (f"m:{i}", [i])),
    ]
    return [shapes[i % len(shapes)](i) for i in range(count)]


# -- through the embedded engine ---------------------------------------------------------


def test_generated_bodies_are_distinct_invalid_and_of_every_kind() -> None:
    bodies = hostile_bodies(len(BODIES) * 20)
    assert len({b for _, b in bodies}) == len(bodies)
    assert Counter(k for k, _ in bodies) == dict.fromkeys(BODIES, 20)


@pytest.mark.parametrize("kind", sorted(BODIES))
def test_every_hostile_body_is_quarantined_with_a_reason(kind: str) -> None:
    app = fake_app(NOW)
    bodies = [b for k, b in hostile_bodies(len(BODIES) * 12, seed=11) if k == kind]
    for body in bodies:
        assert app.engine.handle_event(body) == "quarantined"
    entries = app.store.quarantine_entries(raw=True)
    assert len(entries) == len(bodies)
    assert all(e["error"] and e["stage"] == "consume" for e in entries)
    kept = {e["raw"] for e in entries}
    assert kept == {b.encode("utf-8", "surrogatepass") for b in bodies}


def test_a_quarantined_body_redelivered_is_kept_once() -> None:
    app = fake_app(NOW)
    [(_, body)] = hostile_bodies(1)
    for _ in range(3):
        app.engine.handle_event(body)
    assert len(app.store.quarantine_entries()) == 1
    assert app.store.stats()["quarantined"] == 1


def test_reasons_name_the_field_never_the_content() -> None:
    app = fake_app(NOW)
    body = _event(1)
    body["data"]["text"] = ["MARKER-TEXT"]
    body["data"]["member_id"] = {"MARKER-ID": 1}
    app.engine.handle_event(json.dumps(body))
    [entry] = app.store.quarantine_entries()
    assert "MARKER" not in entry["error"] and "'data." in entry["error"]
    [(_, fields)] = app.store.client.xrange(app.store.keys.quarantine)
    assert not any(b"MARKER" in v for v in fields.values())  # the bytes are kept apart
