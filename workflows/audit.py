"""Audit entries and their hash chain, computed in the pure layer.

Canonical JSON for hashing: UTF-8, keys sorted, no insignificant whitespace,
``ensure_ascii=False``, integers as integers and every timestamp as an RFC 3339
string in UTC; the ``hash`` field itself is left out. The hash is SHA-256 of
those bytes, hex-encoded. (For the values we hash, ids, refs, integers and
strings only, this coincides with RFC 8785.)
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["GENESIS", "canonical_json", "entry_hash", "text_hash"]

GENESIS = "0" * 64


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(entry: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of an entry without its ``hash`` field."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def text_hash(text: str) -> str:
    """A content hash to stand in for text in the audit (E4: never the text itself)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
