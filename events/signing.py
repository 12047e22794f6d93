"""Signed events: HMAC-SHA256 over an envelope, under a key per producer (E5).

Why: anyone who can write to the queue could otherwise put words in a
producer's mouth (a fake allegation, a fake review decision). A producer that
holds a key signs what it sends; the workers check it before anything else.

The signed bytes, exactly:

1. take the CloudEvents JSON object as sent, every attribute and ``data``,
   without the ``esafetysig`` attribute;
2. serialise it as canonical JSON: UTF-8, object keys sorted (by code point),
   separators ``,`` and ``:`` with no whitespace, non-ASCII characters as
   themselves (not ``\\u`` escapes), strings escaped as JSON requires, integers
   as integers (esafety events carry no floating-point numbers);
3. ``esafetysig`` = lowercase hex of HMAC-SHA256(key, those bytes), where the
   key is the UTF-8 bytes of the secret configured for the event's ``source``.

``publish()`` forwards a signed event's object unchanged, so the worker checks
the very bytes the producer signed. Pure: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ForgedEvent

__all__ = [
    "SIGNATURE_ATTRIBUTE",
    "SignatureCheck",
    "sign_envelope",
    "signature_of",
    "signing_input",
    "verify_payload",
]

SIGNATURE_ATTRIBUTE = "esafetysig"
_HEX = frozenset("0123456789abcdef")


def signing_input(envelope: Mapping[str, Any]) -> bytes:
    """The canonical JSON of the envelope without its signature: the bytes that are signed."""
    body = {k: v for k, v in envelope.items() if k != SIGNATURE_ATTRIBUTE}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def signature_of(envelope: Mapping[str, Any], key: bytes) -> str:
    """Lowercase hex HMAC-SHA256 of :func:`signing_input` under ``key``."""
    return hmac.new(key, signing_input(envelope), hashlib.sha256).hexdigest()


def sign_envelope(envelope: Mapping[str, Any], key: bytes) -> dict[str, Any]:
    """A copy of ``envelope`` carrying its ``esafetysig`` attribute."""
    return {**envelope, SIGNATURE_ATTRIBUTE: signature_of(envelope, key)}


def _event_id(envelope: Mapping[str, Any]) -> str | None:
    value = envelope.get("id")
    return value[:80] if isinstance(value, str) and value else None


@dataclass(frozen=True)
class SignatureCheck:
    """Which sources must sign, and their keys.

    A source with a configured key must sign; with ``required`` every source
    must. A signature that is present but wrong is refused in every case.
    """

    keys: Mapping[str, bytes] = field(default_factory=dict)
    required: bool = False

    @property
    def active(self) -> bool:
        return self.required or bool(self.keys)

    def verify(self, envelope: Mapping[str, Any]) -> bool:
        """True if signed and verified, False if unsigned and allowed; raises :class:`ForgedEvent`.

        The error names the event id and the reason, never content.
        """
        event_id = _event_id(envelope)
        source = envelope.get("source")
        key = self.keys.get(source) if isinstance(source, str) else None
        given = envelope.get(SIGNATURE_ATTRIBUTE)
        if given is None:
            if self.required or key is not None:
                raise ForgedEvent(
                    "unsigned: signing is required for this source", event_id=event_id, field=None
                )
            return False
        if not isinstance(given, str) or len(given) != 64 or not set(given) <= _HEX:
            raise ForgedEvent(
                f"malformed {SIGNATURE_ATTRIBUTE}: 64 lowercase hex characters expected",
                event_id=event_id,
                field=SIGNATURE_ATTRIBUTE,
            )
        if key is None:
            if self.required:
                raise ForgedEvent(
                    "signed, but no key is configured for its source",
                    event_id=event_id,
                    field="source",
                )
            return False
        if not hmac.compare_digest(given, signature_of(envelope, key)):
            raise ForgedEvent(
                "signature does not match (wrong key, or the event was altered)",
                event_id=event_id,
                field=SIGNATURE_ATTRIBUTE,
            )
        return True


def verify_payload(raw: bytes | str, check: SignatureCheck, max_bytes: int) -> bool:
    """Decode a payload and :meth:`SignatureCheck.verify` it.

    A payload that cannot be read as a JSON object cannot show a signature: it is
    forged when every source must sign, and otherwise left to the parser to refuse.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    reason = None
    if len(data) > max_bytes:
        reason = "over the max_payload_bytes limit"
    else:
        try:
            body = json.loads(data)
        except (ValueError, RecursionError):
            reason = "not JSON"
        else:
            if not isinstance(body, dict):
                reason = "not a JSON object"
    if reason is not None:
        if check.required:
            raise ForgedEvent(f"unsigned: the payload is {reason}, so no signature can be checked")
        return False
    return check.verify(body)
