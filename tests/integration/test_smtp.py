"""The SMTP notifier against a real SMTP server (aiosmtpd) that the test starts on loopback:
plain, STARTTLS with login, a refused recipient, a ref with no contact, and the whole
embedded path from a guardian registration to a parent's inbox."""

from __future__ import annotations

import datetime as dt
import email
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import fakeredis
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from esafety.workers.app import build_app
from esafety.workers.clock import VirtualClock
from esafety.workers.directory import ContactDirectory, MemoryDirectory
from esafety.workers.process import Processor
from esafety.workers.settings import Settings
from esafety.workers.smtp_notifier import DeliveryFailed, SmtpConfig, SmtpNotifier
from esafety.workflows.ids import EffectKind
from esafety.workflows.model import Effect
from pydantic import SecretStr
from structlog.testing import capture_logs

from tests.helpers import jsonl
from tests.unit.test_flows import guardians, post

WARNING = Effect(
    effect_id="eff-smtp-1",
    kind=EffectKind.WARNING_NOTICE,
    case_id="post:p1",
    recipient="m1",
    clauses=("C2", "S1"),
    detail={"warnings": "1", "removal_at": "2", "rules": "profanity"},
)


class Inbox:
    """An aiosmtpd handler that keeps what it receives and can refuse one address."""

    def __init__(self, refuse: str = "") -> None:
        self.messages: list[tuple[str, list[str], Message]] = []
        self.refuse = refuse
        self.logins: list[str] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, _: Any):  # type: ignore[no-untyped-def]
        if address == self.refuse:
            return "550 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any):  # type: ignore[no-untyped-def]
        if isinstance(data, LoginPassword) and (data.login, data.password) == (b"esafety", b"pw"):
            self.logins.append(data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def serve(inbox: Inbox, **options: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@pytest.fixture
def plain() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox(refuse="refused@example.org")
    for port in serve(inbox):
        yield inbox, port


def notifier(port: int, contacts: dict[str, str], **config: Any) -> SmtpNotifier:
    base = {"host": "127.0.0.1", "port": port, "tls": "none", "sender": "dsl-team@charity.test"}
    return SmtpNotifier(SmtpConfig(**(base | config)), MemoryDirectory(contacts))


def test_a_notice_goes_to_the_refs_contact_with_the_template(plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    notifier(port, {"m1": "member-one@example.org"}).deliver(
        WARNING, delivered_at="2026-11-24T10:00:00Z"
    )
    [(sender, rcpts, message)] = inbox.messages
    assert (sender, rcpts) == ("dsl-team@charity.test", ["member-one@example.org"])
    assert message["Message-ID"] == "<eff-smtp-1@esafety>"
    assert "post:p1" in message["Subject"]
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "C2: posts must not contain or promote vulgarity or profanity." in body
    assert "warning number 1" in body and "$" not in body


def test_starttls_and_login(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    inbox = Inbox()
    for port in serve(
        inbox,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_require_tls=True,
    ):
        notifier(
            port,
            {"m1": "member-one@example.org"},
            tls="starttls",
            ca_file=str(cert),
            username=SecretStr("esafety"),
            password=SecretStr("pw"),
        ).deliver(WARNING, delivered_at="2026-11-24T10:00:00Z")
    assert inbox.logins == ["esafety"]
    assert [m[1] for m in inbox.messages] == [["member-one@example.org"]]


def test_a_refused_recipient_fails_without_naming_the_address(plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    with capture_logs() as logs, pytest.raises(DeliveryFailed) as caught:
        notifier(port, {"m1": "refused@example.org"}).deliver(
            WARNING, delivered_at="2026-11-24T10:00:00Z"
        )
    assert "'m1'" in str(caught.value) and "eff-smtp-1" in str(caught.value)
    assert "refused@example.org" not in str(caught.value) + repr(logs)
    assert caught.value.__cause__ is None and inbox.messages == []


def test_a_ref_with_no_contact_is_not_sent(plain: tuple[Inbox, int]) -> None:
    inbox, port = plain
    with pytest.raises(DeliveryFailed, match="no contact on record"):
        notifier(port, {}).deliver(WARNING, delivered_at="2026-11-24T10:00:00Z")
    assert inbox.messages == []


def test_a_registered_guardian_gets_the_image_notice_by_email(plain: tuple[Inbox, int]) -> None:
    """Guardian contacts come in with esafety.guardian.registered, are kept apart, and are
    read only when the notice is sent; the audit, the report and the logs hold the ref."""
    inbox, port = plain
    client = fakeredis.FakeRedis()
    settings = Settings(redis_url=None, key_prefix="smtp-e2e")
    directory = ContactDirectory(client, "smtp-e2e", {"facebook/group/test": "admins@charity.test"})
    config = SmtpConfig(host="127.0.0.1", port=port, tls="none")
    app = build_app(
        settings,
        embedded=True,
        client=client,
        clock=VirtualClock(dt.datetime(2026, 11, 24, tzinfo=dt.UTC)),
        notifier=SmtpNotifier(config, directory),
    )
    media = [{"media_id": "img", "depicts_children": ["c1"]}]
    events = [
        guardians("c1", "g1"),
        post("p1", "m1", "POST-TEXT-MARKER", "24T09:00:00", media=media),
    ]
    with capture_logs() as logs, Processor(app) as processor:
        report = processor.run(jsonl(events).splitlines())
    received = {tuple(rcpts): message for _, rcpts, message in inbox.messages}
    assert set(received) == {("admins@charity.test",), ("g1@example.org",)}
    body = received[("g1@example.org",)].get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert "c1" in body and "E3:" in body and "POST-TEXT-MARKER" not in body
    trail = repr(report) + repr(logs) + repr(app.store.audit("post:p1"))
    assert "example.org" not in trail and "charity.test" not in trail


@pytest.mark.integration
def test_a_worker_process_sends_by_smtp_to_contacts_resolved_at_delivery(
    plain: tuple[Inbox, int], prefix: str, tmp_path: Path
) -> None:
    """A real ``esafety worker`` with ESAFETY_NOTIFIER=smtp: the DSL's address from the
    operator's contacts file, the guardian's from the registration event, read when sent."""
    from tests.integration.test_flows import Deployment

    inbox, port = plain
    contacts = tmp_path / "contacts.toml"
    contacts.write_text(
        '[contacts]\ndsl = "dsl@charity.test"\n"facebook/group/test" = "admins@charity.test"\n'
    )
    d = Deployment(prefix, tmp_path, 1.0)
    d.env |= {
        "ESAFETY_NOTIFIER": "smtp",
        "ESAFETY_SMTP_HOST": "127.0.0.1",
        "ESAFETY_SMTP_PORT": str(port),
        "ESAFETY_SMTP_TLS": "none",
        "ESAFETY_CONTACTS_PATH": str(contacts),
    }
    d.start()
    try:
        d.publish(
            "esafety.guardian.registered",
            {"child_id": "c1", "guardians": [{"guardian_ref": "g1", "contact": "g1@example.org"}]},
        )
        d.wait("the guardian", lambda: d.app.store.register("c1") is not None)
        media = [{"media_id": "img", "depicts_children": ["c1"]}]
        d.publish(
            "esafety.post.submitted",
            {"post_id": "p1", "member_id": "m1", "text": "I'll hurt you", "media": media},
            "facebook/group/test",
        )
        d.wait("three messages", lambda: len(inbox.messages) >= 3)
    finally:
        d.stop()
    received = sorted(rcpt for _, rcpts, _ in inbox.messages for rcpt in rcpts)
    assert received == ["admins@charity.test", "dsl@charity.test", "g1@example.org"]
    # the member m1 has no contact: the removal notice waits for one (retried, then dead-lettered)
    assert "m1" not in " ".join(received)
    assert "example.org" not in d.log.read_text(errors="replace")
