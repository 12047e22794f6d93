"""Who a ref is: contacts, looked up by the notifier at delivery time and nowhere else.

Why a directory: effects, audit entries, reports and logs name refs (``guardian-7``,
``dsl``, ``local-authority``), never contacts (E4, E5). Only a notifier that must reach
a person, at the moment it sends, asks for an address, and it logs the ref, not the
address.

Two sources, in this order:

1. the operator's contacts file (``ESAFETY_CONTACTS_PATH``, TOML, a ``[contacts]``
   table of ``ref = "address"``): the escalation chain, external bodies, the platform
   admins who act on ``delete_post``, members who gave an address. It wins, so an event
   cannot redirect the DSL's alerts by registering a guardian whose ref is ``dsl``;
2. guardian contacts from ``esafety.guardian.registered``, kept in one Redis hash of
   their own (:func:`contacts_key`), written in the same atomic commit as the guardian
   register; a later registration of the same ref replaces the address.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol

import redis

from ..events.errors import PolicyError
from ..events.models import Guardian

__all__ = [
    "ContactDirectory",
    "Directory",
    "MemoryDirectory",
    "contact_writes",
    "contacts_key",
    "load_contacts",
]


class Directory(Protocol):
    """Resolves a recipient ref to a contact, or ``None`` when none is on record."""

    def contact(self, ref: str) -> str | None: ...


def contacts_key(prefix: str) -> str:
    """The Redis hash of registered contacts (its own key, so an ACL can fence it off)."""
    return f"{prefix}:contacts"


def contact_writes(prefix: str, guardians: Iterable[Guardian]) -> list[list[str]]:
    """The ``hsets`` a guardian registration adds to its commit (empty contacts skipped)."""
    key = contacts_key(prefix)
    return [[key, g.guardian_ref, g.contact.strip()] for g in guardians if g.contact.strip()]


def load_contacts(path: str | Path) -> dict[str, str]:
    """Read the operator's contacts file; errors name the file, never an address."""
    try:
        raw = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(
            f"contacts file {str(path)!r} cannot be read: {type(exc).__name__}"
        ) from None
    table = raw.get("contacts", {})
    if not isinstance(table, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in table.items()
    ):
        raise PolicyError(f"contacts file {str(path)!r}: [contacts] must map refs to strings")
    return {ref: value.strip() for ref, value in table.items() if value.strip()}


class MemoryDirectory:
    """A fixed mapping (tests, and the file part of :class:`ContactDirectory`)."""

    def __init__(self, contacts: Mapping[str, str] | None = None) -> None:
        self.contacts = dict(contacts or {})

    def contact(self, ref: str) -> str | None:
        return self.contacts.get(ref)


class ContactDirectory:
    """The operator's file first, then guardian contacts registered by events (Redis)."""

    def __init__(
        self, client: redis.Redis, prefix: str, fixed: Mapping[str, str] | None = None
    ) -> None:
        self.client = client
        self.key = contacts_key(prefix)
        self.fixed = dict(fixed or {})

    def contact(self, ref: str) -> str | None:
        if ref in self.fixed:
            return self.fixed[ref]
        raw = self.client.hget(self.key, ref)
        return raw.decode("utf-8") if raw else None
