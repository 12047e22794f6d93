"""Screening (issue 4): one test per rule id, Scunthorpe words, figures of speech,
links, personal information, repeats, confidence, data files and spans in the audit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from esafety.events.errors import PolicyError
from esafety.events.models import Media
from esafety.workers.process import Processor
from esafety.workflows.ids import RuleId
from esafety.workflows.policy import default_policy, load_policy, parse_policy
from esafety.workflows.registers import ChildRecord, Registers
from esafety.workflows.screening import (
    Confidence,
    Match,
    normalize,
    post_digest,
    screen,
    screen_text,
)

from esafety.testing import fake_app
from tests.helpers import jsonl, post

POLICY = default_policy()


def rules(text: str, **kwargs: object) -> set[str]:
    return {m.rule.value for m in screen_text(text, POLICY, **kwargs)}  # type: ignore[arg-type]


def confidences(text: str, rule: RuleId) -> set[Confidence]:
    return {m.confidence for m in screen_text(text, POLICY) if m.rule is rule}


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        ("sexual", "send nudes to me"),
        ("sexual", "anyone want to see my dick pics"),
        ("profanity", "This new rota is total shit"),
        ("profanity", "oh fuck off"),
        ("hate", "go back to your own country"),
        ("hate", "All immigrants are vermin"),
        ("violence", "watch the beheading video I found"),
        ("violence", "they beat the dog to death and filmed it"),
        ("threat", "I'll hurt your kid if you post that again"),
        ("threat", "I know where your kids go to school, watch your back at pickup"),
        ("harassment", "nobody likes you, you are worthless"),
        ("harassment", "she's a thief, she stole from the raffle money"),
        ("spam", "Earn money from home! click here for my referral code"),
        ("spam", "Share this with 10 friends or you'll have bad luck"),
        ("bad_link", "look https://www.pornhub.com/x"),
        ("personal_info", "call her on 07700 900123 or mail jo@example.com"),
    ],
)
def test_each_text_rule_finds_its_breach(rule: str, text: str) -> None:
    assert rule in rules(text)


def test_child_image_without_consent_is_found_and_consent_clears_it() -> None:
    media = [Media(media_id="img-1", depicts_children=["c1", "c2"])]
    none = Registers({"c1": ChildRecord("c1", consent={"facebook_group": True})})
    both = Registers({c: ChildRecord(c, consent={"facebook_group": True}) for c in ("c1", "c2")})
    found = screen("Photos!", POLICY, none, media=media)
    assert [(m.rule, m.field) for m in found] == [(RuleId.CHILD_IMAGE_NO_CONSENT, "media.0")]
    assert screen("Photos!", POLICY, both, media=media) == []


@pytest.mark.parametrize(
    "text",
    [
        "We're off to Scunthorpe for half term",
        "The teachers will assess the reading levels",
        "Classic Monday, forgot the lunchbox",
        "Non-alcoholic cocktail recipes welcome",
        "Our therapist recommended the sensory room",
        "Penistone and Cockermouth are lovely towns",
        "The grasshopper and the butterfly",
        "Sussex, Essex and Middlesex",
        "the shitake mushrooms were lovely",
        "an assassin in the school play",
        "Dickens for book club, then a cockatoo at the zoo",
        "the analyst shared the document",
        "a hancock of bread and a scrapbook",
        "flame retardant costumes only",
        "Blue tits nesting in the box the kids made",
        "My son had a finger prick test at the GP",
        "Faggots and peas for tea tonight",
        "Dick Whittington at the theatre was brilliant",
        "love you all xxx",
    ],
)
def test_no_scunthorpe_errors(text: str) -> None:
    assert rules(text) == set()


@pytest.mark.parametrize(
    "text",
    [
        "this heat is killing me",
        "the kids killed it at the show",
        "My feet are killing me after that walk",
        "I could murder a cup of tea",
        "He absolutely murdered that song at karaoke",
        "We got slaughtered 6-0 on Saturday",
        "It was a bloodbath at the Boxing Day sales",
        "I'll shoot you a text when we're leaving",
        "I'll kill two birds with one stone",
        "Knock 'em dead at the audition",
        "See you at pickup!",
        "You're dead right about the car park",
        "We'll smash them on Saturday, come on the under 9s",
        "Watch your step on the path, it's icy",
    ],
)
def test_figures_of_speech_are_not_threats_or_violence(text: str) -> None:
    assert rules(text) & {"threat", "violence"} == set()


def test_threat_is_told_apart_from_violence() -> None:
    assert rules("I will kill you") == {"threat"}
    assert rules("watch this guy get stabbed lol") == {"violence"}


def test_weak_matches_are_marked_for_review() -> None:
    assert confidences("tickets at https://bit.ly/abc", RuleId.BAD_LINK) == {Confidence.WEAK}
    assert confidences("f**k off", RuleId.PROFANITY) == {Confidence.WEAK}
    assert confidences("wtf is this", RuleId.PROFANITY) == {Confidence.WEAK}
    assert confidences("I'll kill him if he forgets again", RuleId.THREAT) == set()
    assert confidences("I'll batter him", RuleId.THREAT) == {Confidence.WEAK}
    assert confidences("I'll batter you", RuleId.THREAT) == {Confidence.CLEAR}


@pytest.mark.parametrize(
    ("text", "confidence"),
    [
        ("look https://www.pornhub.com/x", Confidence.CLEAR),
        ("pornhub[.]com has it", Confidence.CLEAR),
        ("on xhamster dot com", Confidence.CLEAR),
        ("place bets at https://shop.bet365.com/offers", Confidence.CLEAR),
        ("p\u043ernhub.com", Confidence.CLEAR),  # a Cyrillic o: folded, then blocklisted
        ("https://xn--pypal-4ve.com/login", Confidence.WEAK),  # punycode look-alike
        ("https://p\u0430ypal.com/refund", Confidence.WEAK),  # IDN look-alike, not listed
        ("tinyurl.com/y7kq2m", Confidence.WEAK),
    ],
)
def test_bad_links_by_registered_domain(text: str, confidence: Confidence) -> None:
    found = [m for m in screen_text(text, POLICY) if m.rule is RuleId.BAD_LINK]
    assert [m.confidence for m in found] == [confidence]


def test_fine_links_pass_and_the_links_field_is_checked() -> None:
    assert rules("Photos on https://www.bbc.co.uk/news/education-12345678") == set()
    assert rules("see www.leicester.gov.uk/roads and e.g. i.e. a.m.") == set()
    found = screen_text("see the link", POLICY, ["https://xvideos.com/v/1"])
    assert [(m.rule.value, m.field) for m in found] == [("bad_link", "links.0")]


def test_affiliate_links_are_spam() -> None:
    assert "spam" in rules("https://www.amazon.co.uk/dp/B08?tag=mumdeals-21 shoes")
    assert rules("https://www.amazon.co.uk/dp/B08?colour=red shoes") == set()


@pytest.mark.parametrize(
    "text",
    [
        "Her number is 07912 345678",
        "Ring him on +44 7700 900987",
        "email me at sarah.jones84@gmail.com",
        "his email is mr.fraser at gmail dot com",
        "They're at 7 Oak Close, NG7 2AB",
        "Jake goes to Oakfield Primary",
        "Ask Priya Shah, she cancelled it",
        "send it to sort code 20-00-00",
    ],
)
def test_personal_information_is_found(text: str) -> None:
    assert "personal_info" in rules(text)


@pytest.mark.parametrize(
    "text",
    [
        "Please email info@incrediblekids.org.uk with questions",
        "Childline is free on 0800 1111",
        "Term starts 03/09/2025 and the trip costs 12.50",
        "It's a 10 min drive, five minute walk from the station",
        "The charity office is at 1 Mill Lane",
        "Priya from the office says hi",
        "My son goes to a different school",
        "Year 6 SATs are from 12 to 15 May, room 101",
    ],
)
def test_allowlist_and_ordinary_numbers_are_not_personal_information(text: str) -> None:
    assert "personal_info" not in rules(text)


def test_same_text_again_and_again_is_spam_from_the_third_copy() -> None:
    text = "Please vote for our charity in the community awards before Friday"
    digest = post_digest(text, POLICY)
    assert rules(text, recent=[digest]) == set()
    assert rules(text.upper() + "!!", recent=[digest, digest]) == {"spam"}
    assert post_digest("Thank you!", POLICY) == ""  # short posts never count as repeats


def test_repeats_are_counted_per_member_through_the_engine() -> None:
    text = "Visit my stall at the Sunday market for handmade gifts and cards"
    events = [post(f"p{i}", "m1", text, minute=i) for i in range(1, 4)]
    events.append(post("p9", "m2", text, minute=5))
    app = fake_app()
    with Processor(app) as processor:
        report = processor.run(jsonl(events).splitlines())
    rows = {c["case_id"]: c for c in report["cases"]}
    assert [rows[f"post:p{i}"]["rules"] for i in (1, 2, 3)] == [[], [], ["spam"]]
    assert rows["post:p9"]["rules"] == []


def test_audit_holds_spans_never_the_words() -> None:
    marker = "Zebedee"
    text = f"{marker} says this is total shit, email {marker.lower()}@example.com"
    app = fake_app()
    with Processor(app) as processor:
        processor.run(jsonl([post("p1", "m1", text)]).splitlines())
    entries = app.store.audit("post:p1")
    dumped = json.dumps([e.as_dict() for e in entries])
    assert marker.lower() not in dumped.lower() and "shit" not in dumped
    matches = entries[0].detail["matches"]
    assert {m["rule"] for m in matches} == {"profanity", "personal_info"}
    for match in matches:
        assert set(match) == {"rule", "clauses", "span", "confidence", "field", "entry"}
        start, end = match["span"]
        assert 0 <= start < end <= len(text)


def test_spans_point_into_the_original_text() -> None:
    text = "Well \u200bdone! \U0001f600 but this is \U0001d42c\U0001d421\U0001d422\U0001d42d"
    (match,) = screen_text(text, POLICY)
    assert match.rule is RuleId.PROFANITY
    assert text[match.span[0] : match.span[1]] == "\U0001d42c\U0001d421\U0001d422\U0001d42d"


def test_normalize_folds_and_maps_back() -> None:
    norm = normalize("Ｆü\u200bcK")
    assert norm.text == "fuck"
    assert norm.span(0, 4) == (0, 5)


def test_match_as_dict_has_no_text_field() -> None:
    match = Match(RuleId.SPAM, (), (1, 5), entry="lexicon/spam.txt:3")
    assert set(match.as_dict()) == {"rule", "clauses", "span", "confidence", "field", "entry"}


def test_lexicon_errors_name_the_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("fine words\n(broken\n")
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "t"\n[rules.profanity]\nclause = "C2"\nlexicon = ["mine.txt"]\n')
    with pytest.raises(PolicyError, match=r"mine\.txt:2"):
        load_policy(policy)


def test_a_charity_extends_the_lists_beside_its_policy_file(tmp_path: Path) -> None:
    """Word lists are data: a file beside the policy adds words, no release needed."""
    (tmp_path / "local.txt").write_text("# our own words\ngrotbag{,s}\n~(numpty|plonker)\n")
    policy = tmp_path / "policy.toml"
    policy.write_text(
        'version = "local-1"\n'
        "[rules.profanity]\n"
        'clause = "C2"\n'
        'lexicon = ["lexicon/profanity.txt", "local.txt"]\n'
    )
    loaded = load_policy(policy)
    found = screen_text("what a grotbags, total shit", loaded)
    assert [m.entry for m in found] == ["local.txt:2", "lexicon/profanity.txt:10"]
    assert [m.confidence for m in screen_text("you plonker", loaded)] == [Confidence.WEAK]


def test_missing_data_file_is_a_policy_error() -> None:
    with pytest.raises(PolicyError, match=r"nowhere\.txt"):
        parse_policy('version = "x"\n[rules.spam]\nclause = "C7"\nlexicon = ["nowhere.txt"]\n')


def test_eval_command_reports_each_rule(tmp_path: Path) -> None:
    from esafety.workers.cli.main import build_cli
    from typer.testing import CliRunner

    rows = [
        {"id": "a", "text": "what a load of shit", "labels": ["profanity"]},
        {"id": "b", "text": "lovely day at the fair", "labels": []},
        {"id": "c", "text": "the classic cocktail", "labels": ["profanity"]},
    ]
    file = tmp_path / "set.jsonl"
    file.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = CliRunner().invoke(build_cli(), ["eval", str(file), "--json"])
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)["set.jsonl"]
    profanity = scores["rules"]["profanity"]
    assert (profanity["tp"], profanity["fn"], profanity["fp"]) == (1, 1, 0)
    assert profanity["recall"] == 0.5 and profanity["missed"] == ["c"]
    assert scores["benign_flagged"] == 0 and set(scores["rules"]) == {r.value for r in RuleId}


def test_packaged_dev_set_meets_the_targets() -> None:
    """The labelled set of issue 4 (dev part): precision >= .95, recall >= .90, < 1% benign."""
    from esafety.workers.cli.eval_cmd import EVAL_SETS
    from esafety.workflows.screening.evaluation import evaluate, read_samples

    samples = read_samples((EVAL_SETS / "dev.jsonl").read_text("utf-8").splitlines())
    scores = evaluate(samples, POLICY)
    assert scores.posts >= 450 and scores.benign * 2 >= scores.posts
    for rule, score in scores.rules.items():
        assert score.tp + score.fn >= 15, rule
        assert score.precision >= 0.95 and score.recall >= 0.90, (rule, score.as_dict())
    assert scores.benign_flag_rate < 0.01
