"""``commit.lua``'s plan applied from Python: the embedded store's commit on fakeredis.

Why a second implementation: fakeredis interprets Lua in Python (it compiles the script
on every EVAL, collects garbage after it, checks the Lua globals on every ``redis.call``,
and the script decodes the plan and the aggregates' JSON in Lua), so one call of
``commit.lua`` costs about 2 to 4 ms there, the largest part of ``process``. On a real
Redis the script stays: atomic across processes, about 0.2 ms. ``RedisStore`` chooses
(one place); ``tests/contract`` runs the same plans through both and compares every key.

How: the way fakeredis runs a script's ``redis.call``, without the Lua. Under the fake
server's lock (the lock EVAL holds, and every command of every client takes), each
command goes to the fake socket's ``_run_command``, as ``redis.call`` does. So a commit
is as atomic as the script (no reader, no other thread sees part of it) and an error
stops it at the failing command, as in the script, before ``seen``. Going through
redis-py instead (one MGET, one pipeline of writes) costs 50 to 80 us a command in
RESP encoding, parsing and queues, about 1.8 ms a commit; this path about 12 us a
command, 0.5 to 0.9 ms a commit (measured: README, Performance). The store's hot
reads go the same way (``run``). It uses two methods fakeredis's own scripting relies
on; ``available`` checks that they are there, and the store falls back to the script
(and redis-py) if not.

The contract, as in the script: a redelivery (its ``seen`` record present) applies
``dup_hincrs`` only and returns the record; an aggregate whose stored JSON "version"
(0 when the key or the field is absent) is not the expected one is a conflict and nothing
is written; else the writes in the script's order (MSET, XADD, then HSET, SADD, ZADD,
ZREM, RPUSH each once per key with all its values, HINCRBY, DEL) and ``seen`` last.
An ``origin`` (the event's (source, id), hashed, and its aggregate) already recorded for
another aggregate makes the commit a duplicate too; a commit records its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from .clock import SystemClock

__all__ = ["REUSED", "PythonCommit", "available", "stored_version", "writes"]

#: what a duplicate of another aggregate's event returns (``commit.lua``'s ``REUSED``):
#: nothing to dispatch
REUSED = b'{"tag":"","effects":[],"timers":[],"commands":[],"reused":true}'

_GROUPED = (
    ("hsets", "HSET"),
    ("sadds", "SADD"),
    ("zadds", "ZADD"),
    ("zrems", "ZREM"),
    ("rpushes", "RPUSH"),
)


def _arg(value: Any) -> bytes:
    """An argument as the script passes it: a number as Lua spells it ("%.17g")."""
    if type(value) is str:
        return value.encode()
    if type(value) is bytes:
        return value
    if type(value) in (int, float):
        return f"{value:.17g}".encode()
    raise redis.DataError(f"a commit plan holds strings and numbers, not {type(value).__name__}")


def stored_version(raw: bytes | None) -> Any:
    """The script's ``cjson.decode(current)["version"] or 0``: 0 for no key, no field, false."""
    if raw is None:
        return 0
    body = json.loads(raw)
    if not isinstance(body, dict):
        return 0  # the script indexes a decoded string or array to nil
    version = body.get("version", 0)  # an explicit null stays None: equal to no number
    return 0 if version is False else version


def _same_version(stored: Any, expected: Any) -> bool:
    """Lua's ``==``: a boolean or a string is never equal to a number."""
    if isinstance(stored, bool) or isinstance(expected, bool):
        return stored is expected
    if isinstance(stored, int | float) and isinstance(expected, int | float):
        return stored == expected
    return type(stored) is type(expected) and stored == expected


def _grouped(command: str, ops: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """One command per key with all its values, keys in first-seen order (as the script)."""
    by_key: dict[Any, list[Any]] = {}
    for op in ops:
        values = by_key.get(op[0])
        if values is None:
            values = by_key[op[0]] = [command, op[0]]
        values.extend(op[1:])
    return list(by_key.values())


def writes(plan: dict[str, Any]) -> list[list[Any]]:
    """The plan's writes, ``seen`` excepted, as the commands ``commit.lua`` calls."""
    commands: list[list[Any]] = []
    if plan["sets"]:
        mset: list[Any] = ["MSET"]
        for key, value in plan["sets"]:
            mset += (key, value)
        commands.append(mset)
    commands += [["XADD", stream, "*", "e", value] for stream, value in plan["xadds"]]
    for name, command in _GROUPED:
        commands += _grouped(command, plan[name])
    commands += [["HINCRBY", *op] for op in plan["hincrs"]]
    commands += [["DEL", op[0]] for op in plan.get("dels") or ()]
    return commands


def available(client: redis.Redis) -> bool:
    """Whether this fakeredis runs commands the way ``PythonCommit`` calls them."""
    try:
        connection = _connection(client)
    except (AttributeError, redis.RedisError):
        return False
    sock = getattr(connection, "_sock", None)
    found = all(hasattr(sock, name) for name in ("_run_command", "_name_to_func", "_server"))
    connection.disconnect()
    return found


def _connection(client: redis.Redis) -> Any:
    """A connection of its own to the client's fake server and database (its ``_sock``)."""
    connection = client.connection_pool.make_connection()
    connection.connect()
    return connection


class _Lean:
    """fakeredis's ``_run_command`` for this connection, less the checks that cannot apply.

    Why: a commit is about 15 commands, and on this path the commands are a third of
    ``process``; ``_run_command`` spends a part of each on what never applies here: the
    checks of a command inside a script or in pub/sub mode (this private connection is
    neither), Dragonfly's rules (the server is a Redis), and a check that the reply is of
    a valid RESP type (fakeredis's own commands). What remains is what it does otherwise:
    the arguments checked and keys read (``Signature.apply``), the command, the reply
    converted when the connection speaks RESP2, each key written back, keyspace
    notifications when anyone subscribes, hash field expiry notifications, an error as a
    result. Used only on a Redis-type server when every part is found (``of``); else
    the command goes through ``_run_command``. ``tests/contract`` applies the same plans
    with the Lua script and compares every key.
    """

    def __init__(self, sock: Any) -> None:
        from fakeredis import _msgs
        from fakeredis._helpers import SimpleError
        from fakeredis._socket._resp import convert_to_resp2

        self.sock = sock
        self.server = sock._server
        self.error = SimpleError
        self.resp2 = convert_to_resp2
        self.skip_resp2 = _msgs.FLAG_SKIP_CONVERT_TO_RESP2
        self.leave_empty = _msgs.FLAG_LEAVE_EMPTY_VAL

    @classmethod
    def of(cls, sock: Any) -> _Lean | None:
        try:
            lean = cls(sock)
            found = all(
                hasattr(sock, name)
                for name in ("_db", "version", "_keyspace_notifications", "_subkey_notifications")
            )
            if found and sock._resp_version in (2, 3) and sock._server.server_type == "redis":
                return lean
        except (ImportError, AttributeError):
            pass
        return None

    def run(self, func: Any, sig: Any, args: list[Any]) -> Any:
        sock = self.sock
        sock._subkey_events = []
        items: list[Any] = []
        try:
            ret = sig.apply(args, sock._db, sock.version)
            if len(ret) == 1:
                result = ret[0]
            else:
                args, items = ret
                result = func(*args)
                if (
                    sock._resp_version == 2
                    and type(result) not in _LEAVES
                    and self.skip_resp2 not in sig.flags
                ):
                    result = self.resp2(result, "redis", keep_doubles=False)
        except self.error as exc:
            result = exc
        remove_empty = self.leave_empty not in sig.flags
        for item in items:
            item.writeback(remove_empty_val=remove_empty)
        if self.server.subscribers or self.server.psubscribers:
            sock._keyspace_notifications(items, sig.name.encode())
        sock._subkey_notifications(items)
        return result


_LEAVES = frozenset((bytes, int, type(None)))


class PythonCommit:
    """Applies a normalised commit plan (every list present) on a fakeredis client; and
    runs the store's other hot commands the same way (``run``), one lock for several."""

    def __init__(self, client: redis.Redis) -> None:
        self._connection = _connection(client)  # kept: the socket closes with it
        self._sock = self._connection._sock
        self._server = self._sock._server
        self._commands: dict[str, tuple[Any, Any]] = {}
        self._wall = SystemClock()  # what fakeredis reads before each command (or script)
        self._lean = _Lean.of(self._sock)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The server's lock, as fakeredis holds it for one command or one script."""
        with self._server.lock:
            if not self._server.connected:
                raise redis.ConnectionError("the fake server is disconnected")
            now = self._wall.now().timestamp()  # fakeredis's own clock, set per command
            for db in self._server.dbs.values():
                db.time = now
            yield

    def _call(self, name: str, *args: Any) -> Any:
        """One command, as a script's ``redis.call`` runs it (the server lock held)."""
        found = self._commands.get(name)
        if found is None:
            found = self._commands[name] = self._sock._name_to_func(name.lower())
        func, sig = found
        encoded = [a.encode() if type(a) is str else _arg(a) for a in args]  # mostly strings
        if self._lean is not None:
            result = self._lean.run(func, sig, encoded)
        else:
            result = self._sock._run_command(func, sig, encoded, False)
        if isinstance(result, Exception):  # fakeredis returns a command's error
            raise self._sock._decode_error(result)
        return result

    def run(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """Commands together, as a MULTI/EXEC would (the replies unparsed: bytes, ints)."""
        with self._locked():
            return [self._call(*command) for command in commands]

    def _duplicate(self, plan: dict[str, Any], record: Any) -> tuple[str, Any]:
        """A duplicate: only ``dup_hincrs`` are applied; ``record`` is what it replays."""
        for op in plan["dup_hincrs"]:
            self._call("HINCRBY", *op)
        return "dup", record

    def __call__(self, plan: dict[str, Any]) -> tuple[str, Any]:
        """("ok", None) | ("dup", the seen record) | ("conflict", key): the script's reply."""
        checks, seen = plan["checks"], plan["seen"]
        reads = [check[0] for check in checks]
        if seen != "":
            reads.append(seen)
        with self._locked():
            values = self._call("MGET", *reads) if reads else []
            if seen != "" and values[-1] is not None:
                return self._duplicate(plan, values[-1])
            origin = plan.get("origin")
            if origin:
                owner = self._call("HGET", origin[0], origin[1])
                if owner is not None and owner.decode() != origin[2]:
                    return self._duplicate(plan, REUSED)
            for (key, expected), current in zip(checks, values, strict=False):
                if not _same_version(stored_version(current), expected):
                    return "conflict", key
            for command in writes(plan):
                self._call(*command)
            if origin:
                self._call("HSET", *origin)
            if seen != "":
                self._call("SET", seen, plan["result"])
        return "ok", None
