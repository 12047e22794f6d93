"""Notice templates and the contact directory: every notice the flows produce renders,
cites its clauses in words, and carries nothing but what its effect holds."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import fakeredis
import pytest
from esafety.events.errors import PolicyError
from esafety.events.models import Guardian
from esafety.workers.directory import (
    ContactDirectory,
    contact_writes,
    contacts_key,
    load_contacts,
)
from esafety.workers.notices import CLAUSE_WORDS, MISSING, TEMPLATES_DIR, render, template_for
from esafety.workers.process import Processor
from esafety.workflows.ids import EffectKind
from esafety.workflows.model import Effect

from esafety.testing import fake_app
from tests.helpers import envelope, jsonl
from tests.unit.test_flows import allegation, guardians, post, review

MEDIA = [{"media_id": "img", "depicts_children": ["c1", "c2"]}]


def every_kind_of_effect() -> list[Effect]:
    """Run a day that produces every effect kind and variant, and return the effects."""
    events = [
        guardians("c1", "g1"),
        guardians("c2", "g2"),
        post("p0", "m0", "Our trip", "24T09:00:00", media=MEDIA),
        post("p1", "m1", "shit", "24T10:00:00"),
        post("p2", "m1", "fuck off", "24T10:30:00"),
        post("p3", "m2", "I'll hurt you", "24T10:40:00"),
        post("p4", "m3", "bad", "24T10:45:00", links=["https://bit.ly/x"]),
        envelope(
            "esafety.complaint.received",
            {"complaint_id": "k1", "complainant_ref": "cr1", "text": "x"},
            time="2026-11-24T11:00:00Z",
        ),
        allegation("a1", "grooming", "24T11:00:00", children=["c1"]),
        review("allegation:a1", "notify_parents", "dsl", "24T13:30:00"),
        review("allegation:a1", "refer_external", "dsl", "24T13:40:00"),
        envelope(
            "esafety.appeal.lodged",
            {"appeal_id": "ap1", "member_id": "m1", "case_id": "post:p1"},
            time="2026-11-24T14:00:00Z",
        ),
        envelope(
            "esafety.appeal.lodged",
            {"appeal_id": "ap2", "member_id": "m2", "case_id": "post:p3"},
            time="2026-11-24T14:00:00Z",
        ),
        review("appeal:ap1", "overturn", "dsl", "24T15:00:00"),
        review("appeal:ap2", "dismiss", "dsl", "24T15:00:00"),
        envelope("esafety.member.removal_requested", {"member_id": "m4"}, time=at_("24T16")),
        post("p5", "m5", "shit", "24T17:00:00"),
        post("p6", "m5", "shit again", "24T17:01:00"),
    ]
    app = fake_app(datetime(2026, 11, 24, tzinfo=UTC))
    with Processor(app) as processor:
        processor.run(jsonl(events).splitlines(), until=datetime(2027, 1, 1, tzinfo=UTC))
    return app.store.effects()


def at_(hour: str) -> str:
    return f"2026-11-{hour}:00:00Z"


@pytest.fixture(scope="module")
def effects() -> list[Effect]:
    return every_kind_of_effect()


def test_the_day_produces_every_kind(effects: list[Effect]) -> None:
    assert {e.kind for e in effects} == set(EffectKind)


def test_every_notice_renders_fully_and_cites_its_clauses_in_words(effects: list[Effect]) -> None:
    for effect in effects:
        notice = render(effect)
        text = notice.subject + notice.body
        assert "$" not in text and MISSING not in text, (effect.kind, text)
        assert effect.case_id in text or effect.detail.get("appealed_case", "") in text
        for clause in effect.clauses:
            assert f"{clause}: {CLAUSE_WORDS[clause]}" in notice.body, (effect.kind, clause)
        assert effect.clauses, f"{effect.kind} cites no clause"


def test_variants_pick_their_own_template(effects: list[Effect]) -> None:
    names = {template_for(e).name for e in effects}
    assert {
        "guardian_notice.image_without_consent.txt",
        "guardian_notice.allegation.txt",
        "removal_notice.temporary.txt",
        "removal_notice.permanent.txt",
        "removal_notice.at_own_request.txt",
        "appeal_outcome_notice.overturned.txt",
        "appeal_outcome_notice.dismissed.txt",
    } <= names
    used = {p.name for p in TEMPLATES_DIR.glob("*.txt")} - {"guardian_notice.txt"}
    assert used <= names, f"templates never used: {sorted(used - names)}"


def test_a_guardian_notice_names_only_the_recipients_child(effects: list[Effect]) -> None:
    for effect in (e for e in effects if e.kind is EffectKind.GUARDIAN_NOTICE):
        body = render(effect).body
        own = effect.detail["child_id"]
        assert own in body
        assert not ({"c1", "c2"} - {own}) & set(body.replace(")", " ").split())


def test_render_uses_only_the_effect() -> None:
    effect = Effect(
        effect_id="eff-1",
        kind=EffectKind.WARNING_NOTICE,
        case_id="post:p9",
        recipient="m9",
        clauses=("C2", "S1"),
        detail={"warnings": "1", "removal_at": "2", "rules": "profanity"},
    )
    notice = render(effect)
    assert "post:p9" in notice.subject
    assert "warning number 1" in notice.body and "receives 2 warnings" in notice.body


def test_directory_prefers_the_operators_file_over_registrations(tmp_path: Path) -> None:
    client = fakeredis.FakeRedis()
    for key, ref, contact in contact_writes(
        "t1",
        [
            Guardian(guardian_ref="g1", contact=" g1@example.org "),
            Guardian(guardian_ref="dsl", contact="evil@example.org"),
            Guardian(guardian_ref="g2"),
        ],
    ):
        client.hset(key, ref, contact)
    file = tmp_path / "contacts.toml"
    file.write_text('[contacts]\ndsl = "dsl@charity.example"\n')
    directory = ContactDirectory(client, "t1", load_contacts(file))
    assert directory.contact("g1") == "g1@example.org"
    assert directory.contact("dsl") == "dsl@charity.example"
    assert directory.contact("g2") is None  # registered without a contact
    assert client.hlen(contacts_key("t1")) == 2


def test_a_bad_contacts_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    file = tmp_path / "contacts.toml"
    file.write_text('[contacts]\ndsl = ["secret@example.org"]\n')
    with pytest.raises(PolicyError) as caught:
        load_contacts(file)
    assert "secret@example.org" not in str(caught.value)


def test_guardian_registration_writes_contacts_apart_from_the_register() -> None:
    app = fake_app()
    with Processor(app) as processor:
        processor.run(jsonl([guardians("c1", "g1", "g2")]).splitlines())
    contacts = app.store.client.hgetall(contacts_key(app.store.keys.prefix))
    assert contacts == {b"g1": b"g1@example.org", b"g2": b"g2@example.org"}
    record = app.store.register("c1")
    assert record is not None and "example.org" not in repr(record)


class RefuseOne:
    """A notifier that cannot reach one ref (no contact on record) and records the rest."""

    def __init__(self, refused: str) -> None:
        self.refused = refused
        self.sent: list[tuple[str, str]] = []

    def deliver(self, effect: Effect, *, delivered_at: str) -> None:
        if effect.recipient == self.refused:
            raise RuntimeError("no contact on record")
        self.sent.append((effect.kind.value, effect.recipient))


def test_one_undeliverable_notice_does_not_hold_back_the_dsl_alert() -> None:
    app = fake_app()
    with Processor(app) as processor:
        processor.run(jsonl([post("p1", "m1", "I'll hurt you", "24T10:00:00")]).splitlines())
    client, keys = app.store.client, app.store.keys
    for key in client.scan_iter(match=f"{keys.prefix}:*delivered*"):
        client.delete(key)
    effects = [e for e in app.store.effects() if e.case_id == "post:p1"]
    assert [e.kind.value for e in effects] == ["delete_post", "removal_notice", "dsl_alert"]
    refusing = RefuseOne("m1")
    app.engine.notifier = refusing
    with pytest.raises(RuntimeError):
        app.engine.deliver("m:m1", [e.effect_id for e in effects])
    assert refusing.sent == [("delete_post", "facebook/group/test"), ("dsl_alert", "dsl")]
    app.engine.notifier = RefuseOne("nobody")
    assert app.engine.deliver("m:m1", [e.effect_id for e in effects]) == 1  # only the one left
