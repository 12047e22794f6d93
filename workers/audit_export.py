"""Read audit chains and signed heads from Redis, and write or read an export file.

Chains are found three ways, so that deleting a chain's index entry does not
hide it: the chain index, the signed-head hashes, and a scan for audit streams.

Export format (JSONL, one object a line, ``format`` ``esafety-audit-export/1``):

- ``{"type": "header", "format", "exported_at", "case", "since", "keys": [{"key_id",
  "alg": "ed25519", "public_key_pem"}], "hash_rule", "head_rule"}`` first;
- per chain, ``{"type": "chain", "case_id"}``, then its entries in stored order as
  ``{"type": "entry", "case_id", "where", "entry": {...}}``, then
  ``{"type": "head", "case_id", "head": {"case_id", "seq", "hash", "key_id", "sig"}}``.

The file holds ids, refs, rule and clause ids and hashes only, like the audit.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ..workflows.model import member_tag
from ..workflows.steps import iso
from .audit_verify import ChainRecord
from .signing import load_public_keys
from .store import RedisStore

__all__ = [
    "FORMAT",
    "chain_locations",
    "export_lines",
    "read_export",
    "read_store",
    "store_keys",
]

FORMAT = "esafety-audit-export/1"
HASH_RULE = (
    "hash = hex SHA-256 of the entry without 'hash' as canonical JSON (UTF-8, keys sorted, "
    "separators ',' and ':', non-ASCII as is); prev_hash = the previous entry's hash, "
    "64 zeros for seq 1"
)
HEAD_RULE = (
    "sig = base64 Ed25519 signature over canonical JSON of {case_id, hash, key_id, seq}; "
    "key_id = first 16 hex of SHA-256 of the raw 32-byte public key"
)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def chain_locations(store: RedisStore) -> dict[str, str]:
    """Every chain id the store knows of, with its hash tag."""
    k, client = store.keys, store.client
    found = dict(store.chains())
    # a case or member on record with steps must have its chain: deleting one shows as removed
    for case in store.cases():
        if case.seq:
            found.setdefault(case.case_id, case.tag)
    for member in store.members():
        if member.seq:
            found.setdefault(member.chain_id, member_tag(member.member_id))
    prefix = re.escape(k.prefix)
    stream = re.compile(rf"^{prefix}:\{{(?P<tag>[^}}]*)\}}:audit:(?P<chain>.+)$")
    heads = re.compile(rf"^{prefix}:\{{(?P<tag>[^}}]*)\}}:heads$")
    for raw in client.scan_iter(match=f"{k.prefix}:{{*}}:audit:*", count=1000):
        match = stream.match(_text(raw))
        if match:
            found.setdefault(match["chain"], match["tag"])
    for raw in client.scan_iter(match=f"{k.prefix}:{{*}}:heads", count=1000):
        match = heads.match(_text(raw))
        if match:
            for chain in client.hkeys(_text(raw)):
                found.setdefault(_text(chain), match["tag"])
    return found


def _head(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        head = json.loads(raw)
    except ValueError:
        return {"case_id": None, "seq": 0, "hash": "", "key_id": "", "sig": ""}
    return head if isinstance(head, dict) else None


def read_store(store: RedisStore, case_id: str | None = None) -> list[ChainRecord]:
    """Chains (all, or one) with their entries in stream order and their signed heads."""
    locations = chain_locations(store)
    if case_id is not None:
        locations = {case_id: locations[case_id]} if case_id in locations else {}
    records = []
    for chain, tag in sorted(locations.items()):
        pipe = store.client.pipeline(transaction=False)
        pipe.xrange(store.keys.audit(tag, chain))
        pipe.hget(store.keys.heads(tag), chain)
        stream, head = pipe.execute()
        entries = [(_text(sid), _text(fields.get(b"e", b""))) for sid, fields in stream]
        records.append(ChainRecord(chain, entries, _head(head)))
    return records


def store_keys(store: RedisStore) -> dict[str, str]:
    """Public keys the workers published (key id -> PEM): informative, not trusted."""
    raw = store.client.hgetall(store.keys.audit_keys)
    return {_text(k): _text(v) for k, v in raw.items()}


def _entry_at(raw: str) -> str:
    try:
        return str(json.loads(raw).get("at", ""))
    except (ValueError, AttributeError):
        return ""


def _window(record: ChainRecord, since: datetime | None) -> ChainRecord | None:
    if since is None:
        return record
    cutoff = iso(since)
    entries = [(w, raw) for w, raw in record.entries if _entry_at(raw) >= cutoff]
    if not entries:
        return None
    return ChainRecord(record.case_id, entries, record.head, anchored=True)


def _entry_line(case_id: str, where: str, raw: str) -> dict[str, Any]:
    line: dict[str, Any] = {"type": "entry", "case_id": case_id, "where": where}
    try:
        line["entry"] = json.loads(raw)
    except ValueError:
        line["raw"] = raw
    return line


def export_lines(
    records: Iterable[ChainRecord],
    *,
    keys: dict[str, str],
    now: datetime,
    case_id: str | None = None,
    since: datetime | None = None,
) -> Iterator[str]:
    """The export, line by line (``keys``: key id -> public key PEM)."""
    header = {
        "type": "header",
        "format": FORMAT,
        "exported_at": iso(now),
        "case": case_id,
        "since": iso(since) if since else None,
        "keys": [
            {"key_id": kid, "alg": "ed25519", "public_key_pem": pem}
            for kid, pem in sorted(keys.items())
        ],
        "hash_rule": HASH_RULE,
        "head_rule": HEAD_RULE,
    }
    yield json.dumps(header, sort_keys=True)
    for record in records:
        window = _window(record, since)
        if window is None:
            continue
        yield json.dumps({"type": "chain", "case_id": window.case_id})
        for where, raw in window.entries:
            yield json.dumps(_entry_line(window.case_id, where, raw), ensure_ascii=False)
        if window.head is not None:
            yield json.dumps({"type": "head", "case_id": window.case_id, "head": window.head})


def read_export(
    lines: Iterable[str],
) -> tuple[dict[str, Any], list[ChainRecord], dict[str, Ed25519PublicKey]]:
    """Header, chains and the keys the file names; raises ValueError on a malformed file."""
    header: dict[str, Any] | None = None
    records: list[ChainRecord] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            kind = item["type"]
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"line {number}: not an export record") from None
        if kind == "header":
            header = item
        elif kind == "chain":
            anchored = bool(header and header.get("since"))
            records.append(ChainRecord(str(item["case_id"]), anchored=anchored))
        elif not records:
            raise ValueError(f"line {number}: {kind} before any chain record")
        elif kind == "entry":
            raw = json.dumps(item["entry"]) if "entry" in item else str(item.get("raw", ""))
            records[-1].entries.append((f"line {number}", raw))
        elif kind == "head":
            records[-1].head = item["head"] if isinstance(item["head"], dict) else None
    if header is None or header.get("format") != FORMAT:
        raise ValueError(f"no {FORMAT} header line")
    keys = load_public_keys(k["public_key_pem"] for k in header.get("keys", []))
    return header, records, keys
