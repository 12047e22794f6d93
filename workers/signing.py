"""Signed chain heads: an Ed25519 signature over each changed chain's last entry.

Why: a hash chain shows that nothing inside it was altered, but not that its
last entries were cut, nor that someone with write access to Redis rewrote it
whole with fresh hashes. A head signed with a key that never enters Redis shows
both (E5, E6): the chain must still end at the signed (seq, hash).

When: at every commit, inside it. The head is signed in the worker before the
Lua commit and written by the same script as the entries, so there is no window
in which a chain has entries past its signed head (signing every N entries
would leave such a window after a crash). Cost: one signature per changed chain
per commit (about 50 microseconds, against a commit round trip of several hundred).
``process`` embedded is the exception issue 9 allows ("or on shutdown"): its store is
its own memory and dies with it, so it signs each changed chain's head once, when the
work is done, with the same rows (``process.py``).

The signed bytes: canonical JSON (keys sorted, no whitespace, UTF-8) of
``{"case_id", "hash", "key_id", "seq"}``; ``key_id`` is the first 16 hex digits
of SHA-256 over the raw 32-byte public key; ``sig`` is base64 of the signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..workflows.audit import canonical_json
from ..workflows.model import AuditEntry
from .keys import Keys
from .settings import Settings
from .store import RedisStore

__all__ = [
    "HeadSigner",
    "LazyHeadSigner",
    "app_head_signer",
    "generate_key_file",
    "head_payload",
    "head_rows",
    "key_id_of",
    "load_private_key",
    "load_public_keys",
    "public_pem",
    "verify_head",
]

log = structlog.get_logger("esafety.signing")


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def head_payload(head: Mapping[str, Any]) -> bytes:
    """The bytes a head's signature covers."""
    return canonical_json({k: head[k] for k in ("case_id", "hash", "key_id", "seq")})


class HeadSigner:
    """Signs chain heads with one private key (kept outside Redis)."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id_of(self.public)
        self.public_pem = public_pem(self.public)

    @classmethod
    def generate(cls) -> HeadSigner:
        """A development key for embedded runs: lives as long as the process."""
        return cls(Ed25519PrivateKey.generate())

    def sign(self, case_id: str, seq: int, hash_: str) -> dict[str, Any]:
        head: dict[str, Any] = {"case_id": case_id, "seq": seq, "hash": hash_}
        head["key_id"] = self.key_id
        head["sig"] = base64.b64encode(self._private.sign(head_payload(head))).decode()
        return head

    def heads(self, audit: Iterable[AuditEntry]) -> list[dict[str, Any]]:
        """One signed head per chain: its last entry in this commit."""
        last: dict[str, AuditEntry] = {}
        for entry in audit:
            last[entry.case_id] = entry
        return [self.sign(e.case_id, e.seq, e.hash) for e in last.values()]


class LazyHeadSigner:
    """Loads the key on first use, so producers and readers never need it."""

    def __init__(
        self,
        load: Callable[[], HeadSigner],
        on_load: Callable[[HeadSigner], None] | None = None,
    ) -> None:
        self._load = load
        self._on_load = on_load
        self._signer: HeadSigner | None = None
        self._lock = threading.Lock()

    def get(self) -> HeadSigner:
        if self._signer is None:
            with self._lock:
                if self._signer is None:
                    signer = self._load()
                    if self._on_load is not None:
                        self._on_load(signer)
                    self._signer = signer
        return self._signer

    def heads(self, audit: Iterable[AuditEntry]) -> list[dict[str, Any]]:
        return self.get().heads(audit)


def head_rows(
    keys: Keys, tag: str, signer: HeadSigner | LazyHeadSigner, audit: Iterable[AuditEntry]
) -> list[list[str]]:
    """The commit plan's ``hsets`` for the signed heads of the chains a commit changes."""
    return [
        [keys.heads(tag), head["case_id"], json.dumps(head, sort_keys=True)]
        for head in signer.heads(audit)
    ]


def load_private_key(path: str | Path) -> HeadSigner:
    """A PEM (PKCS#8) Ed25519 private key, as written by :func:`generate_key_file`."""
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return HeadSigner(key)


def generate_key_file(path: str | Path, *, exist_ok: bool = False) -> HeadSigner:
    """Write a new private key (mode 0600), or load it if another process just did."""
    path = Path(path)
    if exist_ok and path.exists():
        return load_private_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    try:
        os.link(temp, path)  # atomic; fails if the file appeared meanwhile
    except FileExistsError:
        if not exist_ok:
            raise
        return load_private_key(path)
    finally:
        temp.unlink(missing_ok=True)
    return HeadSigner(key)


def load_public_keys(pems: Iterable[str]) -> dict[str, Ed25519PublicKey]:
    """Trusted keys by key id, from PEM public (or private) keys."""
    out: dict[str, Ed25519PublicKey] = {}
    for pem in pems:
        data = pem.encode()
        key: Any
        if b"PRIVATE KEY" in data:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        else:
            key = serialization.load_pem_public_key(data)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 key")
        out[key_id_of(key)] = key
    return out


def verify_head(head: Mapping[str, Any], trusted: Mapping[str, Ed25519PublicKey]) -> str | None:
    """None if the head is signed by a trusted key, else why not."""
    try:
        key = trusted.get(str(head["key_id"]))
        if key is None:
            return f"signed by key {str(head['key_id'])[:16]!r}, which is not trusted"
        key.verify(base64.b64decode(str(head["sig"]), validate=True), head_payload(head))
    except (KeyError, TypeError, ValueError):
        return "the signed head is malformed"
    except InvalidSignature:
        return "the signed head's signature does not verify"
    return None


def app_head_signer(settings: Settings, store: RedisStore) -> LazyHeadSigner:
    """The signer of a process: the configured key, else a development key (in memory when
    embedded, else a file shared by this machine's workers), loaded at the first commit.
    Its public key is recorded in the store for information; verification pins its own."""

    def load() -> HeadSigner:
        path = settings.audit_key_file()
        if path is None:
            return HeadSigner.generate()
        if settings.audit_key_path:
            return load_private_key(path)
        signer = generate_key_file(path, exist_ok=True)
        log.warning("audit.development_key", key_id=signer.key_id, path=str(path))
        return signer

    def record(signer: HeadSigner) -> None:
        try:
            store.client.hset(store.keys.audit_keys, signer.key_id, signer.public_pem)
        except Exception as exc:  # informative only: never stop a commit for it
            log.warning("audit.key_not_recorded", error=type(exc).__name__)

    return LazyHeadSigner(load, record)
