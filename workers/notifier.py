"""Notifiers deliver an outbox effect to its recipient, once per effect id.

The file notifier is idempotent by itself: under an exclusive lock it reads what
was appended since it last looked and skips an effect id already there, so a
worker that crashed after writing but before marking the effect delivered does
not write it twice.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Protocol

import redis

from ..workflows.model import Effect
from .settings import Settings

__all__ = [
    "FileNotifier",
    "MemoryNotifier",
    "Notifier",
    "build_notifier",
    "notifier_from_settings",
]


class Notifier(Protocol):
    def deliver(self, effect: Effect, *, delivered_at: str) -> None: ...


class MemoryNotifier:
    """Keeps deliveries in a list (embedded runs and tests)."""

    def __init__(self) -> None:
        self.delivered: list[dict[str, str]] = []
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    def deliver(self, effect: Effect, *, delivered_at: str) -> None:
        with self._lock:
            if effect.effect_id in self._ids:
                return
            self._ids.add(effect.effect_id)
            self.delivered.append(_line(effect, delivered_at))


def _line(effect: Effect, delivered_at: str) -> dict[str, str]:
    return {
        "effect_id": effect.effect_id,
        "kind": effect.kind.value,
        "case_id": effect.case_id,
        "recipient": effect.recipient,
        "delivered_at": delivered_at,
    }


class FileNotifier:
    """Appends one JSON line per delivered effect (ESAFETY_NOTIFIER=file:PATH)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._seen: set[str] = set()
        self._offset = 0
        self._lock = threading.Lock()

    def _catch_up(self, handle: int) -> None:
        size = os.fstat(handle).st_size
        if size < self._offset:
            self._seen.clear()
            self._offset = 0
        os.lseek(handle, self._offset, os.SEEK_SET)
        data = os.read(handle, size - self._offset) if size > self._offset else b""
        complete = data.rfind(b"\n") + 1
        for raw in data[:complete].splitlines():
            try:
                self._seen.add(json.loads(raw)["effect_id"])
            except (ValueError, KeyError):
                continue
        self._offset += complete

    def deliver(self, effect: Effect, *, delivered_at: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                fcntl.flock(handle, fcntl.LOCK_EX)
                self._catch_up(handle)
                if effect.effect_id in self._seen:
                    return
                line = json.dumps(_line(effect, delivered_at), sort_keys=True) + "\n"
                os.write(handle, line.encode())
                self._seen.add(effect.effect_id)
                self._offset += len(line.encode())
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                os.close(handle)


def notifier_from_settings(settings: Settings, client: redis.Redis, prefix: str) -> Notifier:
    """SMTP when ``ESAFETY_NOTIFIER=smtp``, or when an SMTP host is set and the notifier is
    left unset; otherwise ``build_notifier(settings.notifier)`` (the file by default)."""
    chosen = settings.notifier == "smtp" or (
        settings.smtp_host is not None and "notifier" not in settings.model_fields_set
    )
    if not chosen:
        return build_notifier(settings.notifier)
    from .directory import ContactDirectory, load_contacts
    from .smtp_notifier import SmtpConfig, SmtpNotifier

    fixed = load_contacts(settings.contacts_path) if settings.contacts_path else {}
    return SmtpNotifier(SmtpConfig.from_settings(settings), ContactDirectory(client, prefix, fixed))


def build_notifier(spec: str) -> Notifier:
    """``file:PATH`` or ``memory`` (``smtp`` needs settings: :func:`notifier_from_settings`)."""
    if spec.startswith("file:"):
        return FileNotifier(spec[len("file:") :])
    if spec == "memory":
        return MemoryNotifier()
    raise ValueError(f"unknown notifier {spec!r}: use file:PATH or memory")
