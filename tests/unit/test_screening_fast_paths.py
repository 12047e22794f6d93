"""Screening's shortcuts (issue 4's speed target) give the answers of the plain way.

Each shortcut is checked against the computation it stands in for, on the packaged
evaluation sets, the evasion variants, benchmark posts and seeded random text: the
cached reading of a post against the word-by-word reading, the fast check against
the full one, patterns tried at their first words against a scan of the stream,
link and personal-information scans of a part of the text against the whole text.
"""

from __future__ import annotations

import copy
import json
import pickle
import random
import re

import pytest
from esafety.workers.bench_screening import EVAL_DIR, build_corpus
from esafety.workflows.policy import default_policy
from esafety.workflows.screening import grammar, links, personal, screen_text
from esafety.workflows.screening.compiled import compile_policy
from esafety.workflows.screening.lexicon import _LETTER_RUN, Lexicon, _spans
from esafety.workflows.screening.normalize import _STREAM_TABLE, _table, normalize, stream_words
from esafety.workflows.screening.tokens import quick_words

from tests.unit.test_screening_evasion import BASES, VARIANTS

POLICY = default_policy()
LEXICON = POLICY.screener.lexicon


def _eval_texts() -> list[str]:
    return [
        str(json.loads(line)["text"])
        for path in sorted(EVAL_DIR.glob("*.jsonl"))
        for line in path.read_text("utf-8").splitlines()
        if line.strip()
    ]


def _noisy(texts: list[str], count: int, seed: int) -> list[str]:
    """Texts cut up and rejoined with the characters the shortcuts reason about."""
    rng = random.Random(seed)
    junk = ["!", "!!!", "sh!t", "k!ll", "x*!", "|!", ".", "?", "\n", "u", "ur", "imma", "kyys",
            "xxx", "sooo", "f**k", "f u c k", "s.h.i.t", "\u2019", "\u00a3", "\u200b", "\u0430",
            "07700 900123", "12 Acacia Road", "SW1A 1AA", "5th", "jo@example.com", "@", "dot",
            "www.bit.ly/x", "pornhub[.]com", "x (dot) com", "https://a.b.co.uk/?ref=1"]  # fmt: skip
    out = []
    for _ in range(count):
        words = rng.choice(texts).split() or ["x"]
        for _ in range(rng.randint(1, 5)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(junk))
        out.append(rng.choice([" ", "  ", "\n", "! "]).join(words))
    return out


EVAL = _eval_texts()
EVASION = [
    template.format(variant(word)) for _, template, word in BASES for variant in VARIANTS.values()
]
BENCH = build_corpus((EVAL_DIR / "dev.jsonl").read_text("utf-8").splitlines(), 300)
TEXTS = EVAL + EVASION + BENCH + _noisy(EVAL + EVASION, 600, seed=4)


def test_the_cached_reading_of_a_post_is_its_word_by_word_reading() -> None:
    different = [t for t in TEXTS if LEXICON.hits(normalize(t)) != LEXICON._word_hits(normalize(t))]
    assert different == []
    assert sum(1 for t in TEXTS if LEXICON.hits(normalize(t))) > 300  # the sets have breaches


def test_the_fast_check_passes_over_no_post_with_a_match() -> None:
    missed = []
    for text in TEXTS:
        norm = normalize(text)
        passed_over = not LEXICON._close_look(norm.text, norm.stream, norm.words)
        if passed_over and LEXICON._word_hits(norm):
            missed.append(text)
    assert missed == []


def test_patterns_tried_at_their_first_words_find_what_a_scan_finds() -> None:
    bounds = [b for group in LEXICON.anchored.values() for b in group]
    bounds += [b for group in LEXICON.exceptions.values() for b in group]
    assert all(b.entry.firsts for b in bounds)
    checked = 0
    for text in EVAL + EVASION:
        stream = " " + " ".join(stream_words(normalize(text).text)) + " "
        tokens = frozenset(stream.split())
        for bound in bounds:
            scanned = [m.span() for m in bound.regex.finditer(stream)]
            for start, _ in scanned:
                assert stream[start + 1 :].split(" ", 1)[0] in bound.entry.firsts
            assert _spans(bound, stream, tokens) == scanned
            checked += len(scanned)
    assert checked > 100


def test_links_read_in_runs_are_the_links_of_the_whole_text() -> None:
    cases = [*TEXTS, "a.b.co.uk/x\tpornhub.com\x1cfoo.net", "x[.]com and y(.)org", "caf\u00e9.com"]
    found = 0
    for text in cases:
        norm = normalize(text)
        whole = [(m.span(), m["host"], m["rest"]) for m in links._LINK.finditer(norm.text)]
        runs = [(m.span(), m["host"], m["rest"]) for m in links._link_matches(norm)]
        assert runs == whole, text
        found += len(whole)
    assert found > 100


@pytest.mark.parametrize("seed", [1, 2])
def test_personal_details_tried_at_their_anchors_are_those_of_a_full_scan(seed: int) -> None:
    rng = random.Random(seed)
    pieces = ["@", ".", "-", "'", ",", "_", "+", " ", " ", "  ", "\n", "1", "12", "07700",
              "SW1A", "1AA", "sw1a 1aa", "5th", "2nd", "Road", "road", "st", "lane", "o'neil",
              "smith-jones", "jo", "example", "com", "co", "uk", "a@b@c.com", "\u2019", "\uff11",
              "\u0430"]  # fmt: skip
    addresses = 0
    names = ["acacia", "o'neil", "smith-jones", "tree", "the", "old", "x", "min", "Park", "a-b"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(2, 30)))
        if rng.random() < 0.5:  # an address, maybe, with one to four words in its name
            name = " ".join(rng.choice(names) for _ in range(rng.randint(1, 4)))
            number = rng.choice(["1", "12", "123", "1234", "12345"]) + rng.choice(["", "a", ","])
            street = rng.choice(["road", "Road", "st", "walk", "lane", "parks", "rd."])
            text = f"{text} {number} {name} {street}{rng.choice(['', '.', '!', ' ok'])}"
        low = text.lower()
        emails = [m.span() for m in personal._email_matches(text)]
        assert emails == [m.span() for m in personal._EMAIL.finditer(text)], text
        inward = [m.start() for m in personal._INWARD.finditer(low)]
        starts = [s for at in inward for s in range(max(0, at - 5), at - 1)]
        postcodes = [m.span() for m in personal._matches_at(personal._POSTCODE, low, starts)]
        assert postcodes == [m.span() for m in personal._POSTCODE.finditer(low)], text
        norm = normalize(text)
        if norm.text.isascii() and not any(c in norm.text for c in "@$|+*"):
            shape = norm.text.encode("ascii").translate(personal._SHAPE)
            numbers = personal._house_numbers(norm, shape)
            tried = personal._matches_at(personal._ADDRESS_ASCII, norm.text, numbers)
            scanned = [m.span() for m in personal._ADDRESS.finditer(norm.text)]
            assert [m.span() for m in tried] == scanned, text
            addresses += len(scanned)
    assert addresses > 100


def test_ascii_and_unicode_tables_split_alike_and_origins_map_back() -> None:
    rng = random.Random(3)
    alphabet = "abc XYZ.!?-'\n\t\x1c12@$|+*\u2019\u00e9\u0301\u200b\uff41\u0430\u00a3\u2026\u0130"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        norm = normalize(text)
        folded = norm.text.translate(_STREAM_TABLE).replace(".", " . ").split()
        assert norm.stream == folded
        raw = text + "\ud800"  # a lone surrogate survives the bytes round trip
        assert stream_words(raw) == raw.translate(_STREAM_TABLE).replace(".", " . ").split()
        table = _table()
        origin: list[int] = []
        for index, char in enumerate(text):
            origin.extend([index] * len(table[ord(char)]))
        assert norm.origin == tuple(origin)
        if norm.text:
            assert norm.span(0, len(norm.text)) == (origin[0], origin[-1] + 1)


def test_shapes_see_the_digits_and_letters_the_patterns_see() -> None:
    for code in range(128):
        char = chr(code)
        shape = chr(personal._SHAPE[code])
        assert (shape == "9") == bool(re.fullmatch(r"\d", char))
        assert (shape in "9aw") == bool(re.fullmatch(r"\w", char))
        assert (shape == "a") == bool(re.fullmatch(r"[abd-hjlnp-uw-z]", char))
        assert (shape == "k") == (char in "@$|+*")


def _in_turn(literals: list[str]) -> str:
    return "(?:" + "|".join(re.escape(literal) for literal in literals) + ")"


@pytest.mark.parametrize("seed", [5, 6])
def test_factored_alternatives_match_as_the_alternatives_tried_in_turn(seed: int) -> None:
    rng = random.Random(seed)
    pieces = ["a", "b", "ab", "a ", "b ", " ", "", "ba", "aa"]
    for _ in range(3000):
        literals = ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 3))) for _ in range(6)]
        text = "".join(rng.choice("ab ") for _ in range(rng.randint(0, 12)))
        after = rng.choice(["", "b", " a", "(?:a|b a)", "a*b", "$", "(?:ab|b)+ "])
        for at in range(len(text) + 1):
            plain = re.compile(_in_turn(literals) + after).match(text, at)
            factored = re.compile(grammar._trie(literals) + after).match(text, at)
            assert (plain and plain.span()) == (factored and factored.span()), (literals, text)


def test_lexicon_patterns_find_what_their_unfactored_forms_find(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def bounds(lexicon: Lexicon) -> dict[str, re.Pattern[str]]:
        groups = [*lexicon.terms.values(), *lexicon.anchored.values()]
        groups += lexicon.exceptions.values()
        return {b.entry.source: b.regex for group in groups for b in group}

    factored = bounds(LEXICON)
    monkeypatch.setattr(grammar, "_trie", _in_turn)
    plain = bounds(compile_policy(POLICY).lexicon)
    assert factored.keys() == plain.keys()
    assert sum(factored[s].pattern != plain[s].pattern for s in factored) > 100
    found = 0
    for text in EVAL + EVASION + BENCH[:100]:
        stream = " " + " ".join(stream_words(normalize(text).text)) + " "
        for source, regex in factored.items():
            spans = [m.span() for m in regex.finditer(stream)]
            assert spans == [m.span() for m in plain[source].finditer(stream)], (source, text)
            found += len(spans)
    assert found > 500


def test_the_pattern_set_finds_the_entries_that_re_finds() -> None:
    assert LEXICON._set is not None
    bounds = LEXICON._set_bounds
    matched_any = 0
    for text in TEXTS:
        stream = " " + " ".join(stream_words(normalize(text).text)) + " "
        expected = [i for i, b in enumerate(bounds) if b.regex.search(stream)]
        if _LETTER_RUN.search(stream):
            expected.append(LEXICON._set_run)
        assert LEXICON._matching(stream) == [*expected, LEXICON._set_sentinel], text
        matched_any += bool(expected)
    assert matched_any > 500


def test_the_fast_check_gives_the_same_answers_without_the_pattern_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    norms = [normalize(t) for t in TEXTS]
    with_set = [LEXICON._close_look(n.text, n.stream, n.words) for n in norms]
    monkeypatch.setattr(LEXICON, "_set", None)
    assert [LEXICON._close_look(n.text, n.stream, n.words) for n in norms] == with_set
    assert LEXICON._matching(" a ") is None
    assert sum(with_set) > 300


def test_a_match_no_exception_covers_is_one_the_might_match_check_sees() -> None:
    seen = 0
    for text in TEXTS:
        norm = normalize(text)
        if LEXICON._plainly_clean(norm.text, norm.stream, norm.words) is None:
            seen += 1
            if "!" not in norm.text:
                assert LEXICON._might_match(quick_words(norm.text)[0]), text
    assert seen > 300


def test_hits_read_with_the_plain_checks_set_answer_are_the_hits() -> None:
    with_answer = 0
    for text in TEXTS:
        norm = normalize(text)
        _, matched = LEXICON._look(norm.text, norm.stream, norm.words)
        assert LEXICON._hits(norm, matched) == LEXICON._word_hits(norm), text
        with_answer += matched is not None and bool(LEXICON._word_hits(norm))
    assert with_answer > 300


def test_a_policy_with_its_pattern_set_copies_and_pickles_and_screens_alike() -> None:
    policy = default_policy()
    assert policy.screener.lexicon._set is not None
    for other in (pickle.loads(pickle.dumps(policy)), copy.deepcopy(policy)):
        assert other.screener.lexicon._set is not None
        for text in EVAL[:200]:
            assert screen_text(text, other) == screen_text(text, policy)
