"""Notices by email: the SMTP adapter of the :class:`~esafety.workers.notifier.Notifier` port.

Why it looks up the address only here: effects name refs, and a contact is read from
the directory at the moment of sending, so a parent who changes their address is
reached at the new one, and no address ever enters an audit entry, a report or a log
line. Errors name the effect id and the recipient's ref, never the address (smtplib's
own exceptions can hold it, so they are replaced, not chained).

Exactly once: the engine marks an effect delivered after ``deliver`` returns and skips
it on a redelivery; a crash between the two can send a message twice, so each message
carries ``Message-ID: <effect_id@esafety>`` and a receiving system can drop the copy.
A failure raises :class:`DeliveryFailed`: dramatiq retries with backoff, then
dead-letters with the reason.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

import structlog
from pydantic import SecretStr

from ..events.errors import EsafetyError
from ..workflows.model import Effect
from .directory import Directory
from .notices import TEMPLATES_DIR, render
from .settings import Settings

__all__ = ["DeliveryFailed", "SmtpConfig", "SmtpNotifier"]

log = structlog.get_logger("esafety.notifier")


class DeliveryFailed(EsafetyError):
    """A notice could not be sent: no contact on record, or the SMTP server refused it.

    Transient as far as the engine knows (a contact may be registered later): the
    deliver actor retries with backoff and dead-letters after its limit.
    """

    def __init__(self, effect_id: str, recipient: str, reason: str) -> None:
        self.effect_id = effect_id
        self.recipient = recipient
        self.reason = reason
        super().__init__(
            f"notice {effect_id!r} to ref {recipient!r} not sent: {reason}; "
            "check the contacts file or the guardian registration, then replay the dead letter"
        )


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    sender: str = "safeguarding@localhost"
    tls: str = "starttls"
    username: SecretStr | None = None
    password: SecretStr | None = None
    ca_file: str | None = None
    timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpConfig:
        if not settings.smtp_host:
            raise ValueError("ESAFETY_SMTP_HOST is not set")
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.smtp_from,
            tls=settings.smtp_tls,
            username=settings.smtp_username,
            password=settings.smtp_password,
            ca_file=settings.smtp_ca_file,
            timeout_s=settings.smtp_timeout_s,
        )

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


class SmtpNotifier:
    """Renders each effect's notice and sends it to the recipient's contact."""

    def __init__(
        self, config: SmtpConfig, directory: Directory, templates_dir: Path = TEMPLATES_DIR
    ) -> None:
        self.config = config
        self.directory = directory
        self.templates_dir = templates_dir

    def message(self, effect: Effect, address: str, delivered_at: str) -> EmailMessage:
        notice = render(effect, self.templates_dir)
        msg = EmailMessage()
        msg["From"] = self.config.sender
        msg["To"] = address
        msg["Subject"] = notice.subject
        msg["Message-ID"] = f"<{effect.effect_id}@esafety>"
        msg["Date"] = format_datetime(datetime.fromisoformat(delivered_at.replace("Z", "+00:00")))
        msg["X-Esafety-Effect"] = f"{effect.kind.value} {effect.effect_id}"
        msg.set_content(notice.body)
        return msg

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        if c.tls == "ssl":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                c.host, c.port, timeout=c.timeout_s, context=c.tls_context()
            )
        else:
            smtp = smtplib.SMTP(c.host, c.port, timeout=c.timeout_s)
            if c.tls == "starttls":
                smtp.starttls(context=c.tls_context())
        if c.username is not None and c.password is not None:
            smtp.login(c.username.get_secret_value(), c.password.get_secret_value())
        return smtp

    def deliver(self, effect: Effect, *, delivered_at: str) -> None:
        address = self.directory.contact(effect.recipient)
        if not address:
            raise DeliveryFailed(effect.effect_id, effect.recipient, "no contact on record")
        msg = self.message(effect, address, delivered_at)
        reason = ""
        try:
            with self._connect() as smtp:
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            reason = f"SMTP {exc.smtp_code}"
        except (smtplib.SMTPException, OSError) as exc:
            reason = type(exc).__name__
        if reason:
            log.warning("notice.failed", effect_id=effect.effect_id, reason=reason)
            raise DeliveryFailed(effect.effect_id, effect.recipient, reason)
        log.info(
            "notice.sent", effect_id=effect.effect_id, kind=effect.kind.value, to=effect.recipient
        )
