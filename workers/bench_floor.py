"""The bench's *store floor*: the engine's Redis work for a post, without its decision.

Why: ``esafety bench`` compares the engine with a dramatiq actor that does nothing. The
gap has two parts, the store protocol (a read of the aggregate, then one ``commit.lua``
call, each a round trip) and the decision work in Python (parsing, screening, the state
machine, the plan, audit lines, signing). This actor does only the first, on the same
worker stack as the engine, so the bench can say how far any decision logic could get
on this store and this machine.

How: at start it runs the engine once on a real post from the bench's mix and keeps
the plan and keys of that commit. For each message it renames the post's ids (event,
post, member) to ones derived from the message body, reads the case and member with one
MGET as the engine does, and runs ``commit.lua`` with the renamed plan: the same script,
the same number and kinds of writes, nothing decided.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from ..events.envelope import parse_event
from ..workflows.routing import route
from .app import App

__all__ = ["StoreFloor", "install_floor"]

_ORIGIN = "floor-origin-placeholder"


@dataclass
class StoreFloor:
    """``handle_event``'s stand-in: a read and a commit, renamed from a template."""

    app: App
    plan_json: str
    keys_json: str
    names: tuple[tuple[str, str], ...]  # (the template's id, the placeholder put there)
    read_keys: tuple[str, str]

    @classmethod
    def from_template(cls, app: App, body: str) -> StoreFloor:
        """Commit ``body`` through the engine once and keep that commit as the template."""
        event = parse_event(body)
        r = route(event)
        if r.case_id is None or r.member_id is None or r.tag is None:
            raise ValueError("the floor's template must be a post (a case and a member)")
        post_id = r.case_id.split(":", 1)[1]
        names = ((event.id, "{event}"), (post_id, "{post}"), (r.member_id, "{member}"))
        captured: list[tuple[dict[str, Any], list[str]]] = []
        commit = app.store.commit

        def capture(plan: dict[str, Any], keys: list[str]) -> Any:
            captured.append((json.loads(json.dumps(plan)), list(keys)))
            return commit(plan, keys)

        dispatch, app.engine.dispatch = app.engine.dispatch, None
        app.store.commit = capture  # type: ignore[method-assign]
        try:
            app.engine.handle_event(body)
        finally:
            app.store.commit = commit  # type: ignore[method-assign]
            app.engine.dispatch = dispatch
        if not captured:
            raise ValueError("the floor's template made no commit")
        plan, keys = captured[-1]
        if plan.get("origin"):
            plan["origin"][1] = _ORIGIN
        plan_json, keys_json = json.dumps(plan, separators=(",", ":")), json.dumps(keys)
        for old, placeholder in names:
            plan_json = plan_json.replace(old, placeholder)
            keys_json = keys_json.replace(old, placeholder)
        case_key = app.store.keys.case(r.tag, r.case_id)
        member_key = app.store.keys.member(r.tag, r.member_id)
        for old, placeholder in names:
            case_key = case_key.replace(old, placeholder)
            member_key = member_key.replace(old, placeholder)
        return cls(app, plan_json, keys_json, names, (case_key, member_key))

    def _renamed(self, text: str, unique: str) -> str:
        for _, placeholder in self.names:
            text = text.replace(placeholder, f"{placeholder[1:-1]}-{unique}")
        return text.replace(_ORIGIN, unique)

    def __call__(self, body: str, line: int | None = None) -> str:
        unique = hashlib.blake2b(body.encode(), digest_size=8).hexdigest()
        keys: list[str] = json.loads(self._renamed(self.keys_json, unique))
        plan: dict[str, Any] = json.loads(self._renamed(self.plan_json, unique))
        store = self.app.store
        store.client.execute_command("MGET", *(self._renamed(k, unique) for k in self.read_keys))
        return store.commit(plan, keys).status


def install_floor(app: App, template: str) -> StoreFloor:
    """Make ``app``'s ``handle_event`` actor run the floor instead of the engine."""
    floor = StoreFloor.from_template(app, template)
    app.engine.handle_event = floor  # type: ignore[method-assign]
    return floor
