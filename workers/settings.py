"""Configuration: one ``Settings`` object, read from ``ESAFETY_*`` at the entry point.

Library code never reads the environment; it is handed what it needs from here.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ..events.limits import Limits

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Everything an operator can set. Secrets (URLs with passwords, keys) are ``SecretStr``."""

    model_config = SettingsConfigDict(env_prefix="ESAFETY_", extra="ignore")

    redis_url: SecretStr | None = Field(None, description="redis:// or rediss://; unset: embedded")
    broker_url: SecretStr | None = Field(None, description="amqp:// for RabbitMQ; default: Redis")
    key_prefix: str = "esafety"
    broker_namespace: str = "esafety-dramatiq"
    policy_path: str | None = None
    notifier: str = "file:esafety-notices.jsonl"
    log_format: str = Field("auto", description="json, console or auto (console on a terminal)")
    log_level: str = "INFO"
    max_payload_bytes: int = 256 * 1024
    max_text_chars: int = 20_000
    max_list_items: int = 100
    max_id_chars: int = 200  # ids, refs and the event's source
    conflict_retries: int = 20
    max_retries: int = 8
    min_backoff_ms: int = 200
    max_backoff_ms: int = 60_000
    not_found_retries: int = 6
    heartbeat_timeout_ms: int = 5_000
    # The outbox relay (workers/outbox_relay.py): how often a worker looks for pending
    # effects whose delivery message is gone, and how long one must wait before it is resent.
    outbox_relay_interval_ms: int = 5_000
    outbox_relay_grace_ms: int = 30_000
    # dramatiq deletes dead letters older than this (its default: 7 days); kept a year here,
    # so a failed notice is replayed or purged by a person, never dropped by a timer.
    dead_letter_ttl_ms: int = 365 * 86_400_000
    # dramatiq's own maintenance (a chance per million commands; it runs KEYS): off, the
    # workers maintain the queues every maintenance_interval_ms instead (redis_guard.py)
    maintenance_chance: int = 0
    maintenance_interval_ms: int = 1_000
    worker_timeout_ms: int = 100
    queue_prefetch: int = 0
    # Per queue, JSON ({"events": 256, "deliveries": 32}); a queue not named uses queue_prefetch.
    prefetch_by_queue: dict[str, int] = Field(default_factory=dict)
    processes: int = 1
    threads: int = 8
    metrics_port: int | None = None
    metrics_host: str = Field("127.0.0.1", description="0.0.0.0 in a container")
    metrics_dir: str | None = Field(None, description="multiprocess dir; `esafety worker` sets it")
    # Notices by email (workers/smtp_notifier.py): ESAFETY_NOTIFIER=smtp, or set the host
    # and leave ESAFETY_NOTIFIER unset. Contacts: workers/directory.py.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_from: str = "safeguarding@localhost"
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_username: SecretStr | None = None
    smtp_password: SecretStr | None = None
    smtp_ca_file: str | None = Field(None, description="extra CA bundle to trust (TLS)")
    smtp_timeout_s: float = 10.0
    contacts_path: str | None = Field(None, description="TOML: contacts of chain refs etc.")
    # Audit (workers/signing.py): the Ed25519 key that signs chain heads lives outside Redis.
    # Unset: a development key, in memory when embedded, else in audit_dev_key_dir.
    audit_key_path: str | None = Field(None, description="PEM Ed25519 private key (workers)")
    audit_public_key_path: str | None = Field(None, description="PEM public key that verify pins")
    audit_dev_key_dir: str = "~/.cache/esafety"
    # Signed events (events/signing.py): {"source": "secret"} as JSON; a source with a key
    # must sign, and with require_signed_events every source must.
    event_keys: dict[str, SecretStr] = Field(default_factory=dict)
    require_signed_events: bool = False
    sign_events: bool = Field(False, description="publish signs with its source's key")
    evidence_sweep_s: float = Field(3600, gt=0, description="workers remove expired evidence")
    # Tests only: run workers on a ScaledClock (workers/clock.py), so deadlines of hours
    # pass in seconds. Unset in production: workers read the system clock.
    test_clock_epoch: datetime | None = None
    test_clock_origin: float | None = None
    test_clock_speed: float = Field(1.0, gt=0)

    def limits(self) -> Limits:
        return Limits(
            max_payload_bytes=self.max_payload_bytes,
            max_text_chars=self.max_text_chars,
            max_list_items=self.max_list_items,
            max_id_chars=self.max_id_chars,
        )

    @property
    def embedded(self) -> bool:
        return self.redis_url is None

    def audit_key_file(self) -> Path | None:
        """The signing key's file: configured, or the development key's (None: embedded)."""
        if self.audit_key_path:
            return Path(self.audit_key_path).expanduser()
        if self.embedded:
            return None
        return Path(self.audit_dev_key_dir).expanduser() / "audit-dev-ed25519.pem"

    def event_key_bytes(self) -> dict[str, bytes]:
        return {src: key.get_secret_value().encode() for src, key in self.event_keys.items()}
