"""Redis key names, in one place.

Keys of one aggregate carry its hash tag (``{m:<member>}``, ``{complaint:<id>}``,
``{c:<child>}``) so an atomic commit touches one hash slot; the ``esafety:idx:*``
indexes are global and are the part to shard before a move to Redis Cluster.
"""

from __future__ import annotations

import hashlib

__all__ = ["Keys"]


class Keys:
    """Key builder under a prefix (tests use a fresh prefix per run)."""

    def __init__(self, prefix: str = "esafety") -> None:
        self.prefix = prefix
        self.cases = f"{prefix}:idx:cases"
        self.members = f"{prefix}:idx:members"
        self.chains = f"{prefix}:idx:chains"
        self.effects = f"{prefix}:idx:effects"
        self.pending = f"{prefix}:idx:outbox_pending"
        self.timers = f"{prefix}:idx:timers"
        self.stats = f"{prefix}:stats"
        self.case_states = f"{prefix}:idx:case_states"
        self.quarantine = f"{prefix}:quarantine"
        self.quarantine_seen = f"{prefix}:quarantine:seen"
        #: the raw bytes of quarantined input (stream entry id -> bytes): content, so
        #: under ``<prefix>:ev:`` with the evidence, fenced off by the same ACL patterns
        self.quarantine_raw = f"{prefix}:ev:quarantine"
        #: the last quarantine entry whose bytes' retention was checked (the sweep's cursor)
        self.quarantine_swept = f"{prefix}:quarantine:swept"
        self.workers = f"{prefix}:workers"
        # each committed event's (source, id), hashed -> the aggregate (tag) it went to
        self.origins = f"{prefix}:idx:origins"

    def case(self, tag: str, case_id: str) -> str:
        return f"{self.prefix}:{{{tag}}}:case:{case_id}"

    def member(self, tag: str, member_id: str) -> str:
        return f"{self.prefix}:{{{tag}}}:member:{member_id}"

    def register(self, tag: str) -> str:
        return f"{self.prefix}:{{{tag}}}:register"

    def audit(self, tag: str, chain_id: str) -> str:
        return f"{self.prefix}:{{{tag}}}:audit:{chain_id}"

    def outbox(self, tag: str) -> str:
        return f"{self.prefix}:{{{tag}}}:outbox"

    def delivered(self, tag: str) -> str:
        return f"{self.prefix}:{{{tag}}}:delivered"

    def seen(self, tag: str, *origin: str) -> str:
        return f"{self.prefix}:{{{tag}}}:seen:{self.origin(*origin)}"

    @staticmethod
    def origin(*parts: str) -> str:
        """A commit's origin ((source, id), or ("timer", id)...) as a field: 32 hex digits."""
        return hashlib.sha256("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()[:32]

    # -- audit heads and evidence (issue 9) ------------------------------------
    def heads(self, tag: str) -> str:
        """Signed chain heads of one aggregate: chain id -> signed head JSON."""
        return f"{self.prefix}:{{{tag}}}:heads"

    @property
    def audit_keys(self) -> str:
        """Public keys that signed heads (key id -> PEM), for information; trust is pinned."""
        return f"{self.prefix}:idx:audit_keys"

    def evidence(self, tag: str, case_id: str) -> str:
        """A case's evidence (text, notes), under ``<prefix>:ev:`` so ACLs can fence it off."""
        return f"{self.prefix}:ev:{{{tag}}}:{case_id}"

    def evidence_closed(self, kind: str) -> str:
        """Closed cases of one kind by when they closed (ms): the retention job's index."""
        return f"{self.prefix}:idx:evidence_closed:{kind}"
