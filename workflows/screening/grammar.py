"""The lexicon file format: one entry a line, compiled to a pattern over words.

Why a small language and not raw regular expressions: entries are written by a
charity's staff, evasion (leetspeak, spacing, homoglyphs) is undone before the
words are compared, and every entry must name the rarest word it needs so that a
post without that word is passed over at set-lookup speed.

Grammar of a line (``#`` starts a comment)::

    word                a whole word after normalisation ("ass" never matches "assess")
    two words           the words in order
    (a|b c|d)           one of the alternatives, each a word sequence
    [x y]               optional words
    *                   any one word
    ...                 up to three words
    <num>               a word with a digit in it ("500", "£50k")
    kill{,s,ed,ing}     suffix alternatives: kill, kills, killed, killing
    @insult             a macro defined earlier in the file: ``@insult = (idiot|moron)``
    ~entry              weak: the post goes to a person instead of being sanctioned
    !entry              exception: a match of this file's rule inside it is dropped
                        (figures of speech: "killing it", "blue tits")

Apostrophes split words as they do in posts ("i'll" is "i ll").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from ...events.errors import PolicyError

__all__ = ["Entry", "parse_lexicon", "words_of"]

# Words too common to pick as an entry's anchor; speed only, never what matches.
_COMMON = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "been",
        "but",
        "by",
        "can",
        "could",
        "do",
        "for",
        "from",
        "get",
        "go",
        "going",
        "gonna",
        "got",
        "had",
        "has",
        "have",
        "he",
        "her",
        "him",
        "his",
        "i",
        "if",
        "in",
        "is",
        "it",
        "ll",
        "m",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "re",
        "s",
        "she",
        "so",
        "t",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "u",
        "up",
        "ur",
        "us",
        "was",
        "we",
        "were",
        "what",
        "when",
        "who",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)
# Words parents use all the time: picked as an anchor only when nothing rarer is required.
_COMMON |= frozenset(
    [
        "all",
        "back",
        "book",
        "daughter",
        "drop",
        "everyone",
        "find",
        "free",
        "good",
        "great",
        "here",
        "home",
        "kid",
        "kids",
        "know",
        "like",
        "likes",
        "love",
        "made",
        "message",
        "need",
        "next",
        "now",
        "number",
        "only",
        "out",
        "see",
        "share",
        "son",
        "walk",
        "want",
        "wants",
        "watch",
    ]
)
_TOKEN = re.compile(r"\(|\)|\[|\]|\||\.\.\.|[^\s()\[\]|]+")
_SUFFIX = re.compile(r"^([^{}]*)\{([^{}]*)\}$")
_WORD_SPLIT = re.compile(r"[^a-z0-9@$*\u0080-\U0010ffff]+")


@dataclass(frozen=True, slots=True)
class Entry:
    """One compiled line: a pattern over the word stream, and the words it needs."""

    source: str
    pattern: str
    anchors: frozenset[str]
    words: frozenset[str]
    weak: bool = False
    exception: bool = False
    single: frozenset[str] = field(default_factory=frozenset)
    # every required slot: a post must have a word of each before the pattern is tried
    needs: tuple[frozenset[str], ...] = ()
    # the words a match can start with (None: any word), so the pattern is tried only there
    firsts: frozenset[str] | None = None


def words_of(text: str) -> list[str]:
    """Split a lexicon word the way a post is split (apostrophes and hyphens separate)."""
    return [w for w in _WORD_SPLIT.split(text.casefold()) if w]


class _Part(NamedTuple):
    """A parsed item or sequence: its regex, the word sets a match must contain one of,
    the words a match can start with (None: any word), whether it can match nothing, and
    (when it is only words) the texts it matches, in the order the regex tries them."""

    regex: str
    needs: list[frozenset[str]]
    first: frozenset[str] | None
    nullable: bool
    literals: tuple[str, ...] | None = None


# Past this many texts a sequence of alternatives is left as the alternatives in turn.
_PRODUCT_LIMIT = 64


def _trie(literals: Iterable[str]) -> str:
    """``(?:l1|l2|...)`` for texts ``literals``, factored by their leading characters so
    the regex engine picks a branch by one character instead of trying every text.

    The same matches, found in the same order (so the same spans): the engine tries the
    texts in turn, and only two that can both match here may not swap. Texts that begin
    with different characters never both match, so each run of non-empty texts is
    grouped by first character, keeping the order within a group; the empty text
    matches always, so no text moves across it. A text that comes again after itself
    is dropped (tried again, it fails again).
    """
    branches = _branches(list(dict.fromkeys(literals)))
    if len(branches) == 1:
        return branches[0]
    return "(?:" + "|".join(branches) + ")"


def _branches(literals: list[str]) -> list[str]:
    """The alternatives of ``_trie`` (distinct texts, in order)."""
    branches: list[str] = []
    groups: dict[str, list[str]] = {}
    for literal in literals:
        if literal:
            groups.setdefault(literal[0], []).append(literal[1:])
        else:  # nothing moves across the empty text
            branches += _grouped(groups)
            groups = {}
            branches.append("")
    return branches + _grouped(groups)


def _grouped(groups: dict[str, list[str]]) -> list[str]:
    out = []
    for char, rests in groups.items():
        tails = _branches(list(dict.fromkeys(rests)))
        tail = tails[0] if len(tails) == 1 else "(?:" + "|".join(tails) + ")"
        out.append(re.escape(char) + tail)
    return out


def _then(first: frozenset[str] | None, more: frozenset[str] | None) -> frozenset[str] | None:
    return None if first is None or more is None else first | more


class _Parser:
    def __init__(self, tokens: list[str], macros: dict[str, list[str]], where: str) -> None:
        self.tokens = tokens
        self.pos = 0
        self.macros = macros
        self.where = where
        self.words: set[str] = set()

    def fail(self, why: str) -> PolicyError:
        return PolicyError(f"{self.where}: {why}")

    def seq(self, stop: tuple[str, ...]) -> _Part:
        """Regex for a sequence, the word sets that any match must contain one of, and
        the words it can start with."""
        parts: list[str] = []
        required: list[frozenset[str]] = []
        first: frozenset[str] | None = frozenset()
        nullable = True
        # the texts the sequence matches, in the order tried (the first item's choice
        # varies slowest), while there are few
        literals: tuple[str, ...] | None = ("",)
        while self.pos < len(self.tokens) and self.tokens[self.pos] not in stop:
            item = self.item()
            parts.append(item.regex)
            required.extend(item.needs)
            if nullable:  # everything before this item can match nothing
                first = _then(first, item.first)
                nullable = item.nullable
            if (
                literals is not None
                and item.literals is not None
                and len(literals) * len(item.literals) <= _PRODUCT_LIMIT
            ):
                literals = tuple(a + b for a in literals for b in item.literals)
            else:
                literals = None
        regex = _trie(literals) if literals is not None and len(parts) > 1 else "".join(parts)
        return _Part(regex, required, first, nullable, literals)

    def item(self) -> _Part:
        token = self.tokens[self.pos]
        self.pos += 1
        if token == "(":
            return self.group(")", optional=False)
        if token == "[":
            return self.group("]", optional=True)
        if token == "*":
            return _Part(r"[^ .]+ ", [], None, False)
        if token == "...":
            return _Part(r"(?:[^ .]+ ){0,3}", [], None, True)
        if token == "<num>":
            return _Part(r"[^ .]*[0-9][^ .]* ", [], None, False)
        if token.startswith("@"):
            if token not in self.macros:
                raise self.fail(f"unknown macro {token}")
            sub = _Parser(self.macros[token], self.macros, self.where)
            body = sub.seq(())
            self.words |= sub.words
            return body._replace(regex=f"(?:{body.regex})")
        if token in (")", "]", "|"):
            raise self.fail(f"unexpected {token!r}")
        return self.word(token)

    def group(self, close: str, *, optional: bool) -> _Part:
        options: list[str] = []
        anchors: set[str] = set()
        first: frozenset[str] | None = frozenset()
        nullable = False
        literals: list[str] | None = []
        while True:
            alternative = self.seq(("|", close))
            options.append(alternative.regex)
            if literals is not None and alternative.literals is not None:
                literals += alternative.literals
            else:
                literals = None
            anchors |= _best(alternative.needs) if alternative.needs else set()
            first = _then(first, alternative.first)
            nullable = nullable or alternative.nullable
            if not alternative.needs:
                optional = True  # an empty alternative makes the group optional
            if self.pos >= len(self.tokens):
                raise self.fail(f"missing {close!r}")
            token = self.tokens[self.pos]
            self.pos += 1
            if token == close:
                break
        if literals is not None:  # words only: one branch per leading character
            if optional:
                literals.append("")  # ``(?:...)?`` tries the group, then nothing
            regex = _trie(literals)
            if optional:
                return _Part(regex, [], first, True, tuple(literals))
            return _Part(regex, [frozenset(anchors)], first, nullable, tuple(literals))
        body = "|".join(options)
        if optional:
            return _Part(f"(?:{body})?", [], first, True)
        return _Part(f"(?:{body})", [frozenset(anchors)], first, nullable)

    def word(self, token: str) -> _Part:
        suffix = _SUFFIX.match(token)
        forms = [suffix[1] + end for end in suffix[2].split(",")] if suffix else [token]
        literals: list[str] = []
        needs: set[str] = set()
        first: set[str] = set()
        for form in forms:
            parts = words_of(form)
            if not parts:
                raise self.fail(f"{token!r} has no letters")
            self.words.update(parts)
            literals.append("".join(p + " " for p in parts))
            needs.add(max(parts, key=_rarity))
            first.add(parts[0])
        return _Part(_trie(literals), [frozenset(needs)], frozenset(first), False, tuple(literals))


def _rarity(word: str) -> tuple[int, int]:
    return (0 if word in _COMMON else 1, len(word))


def _cost(words: Iterable[str]) -> tuple[int, int]:
    words = list(words)
    return (sum(100 if w in _COMMON else 1 for w in words), len(words))


def _best(needs: list[frozenset[str]]) -> set[str]:
    return set(min(needs, key=_cost)) if needs else set()


def _single_words(tokens: list[str]) -> frozenset[str]:
    """The words of an entry that is one word (or one group of single words)."""
    if len(tokens) == 1 and tokens[0][0] not in "@*.<":
        suffix = _SUFFIX.match(tokens[0])
        forms = [suffix[1] + e for e in suffix[2].split(",")] if suffix else [tokens[0]]
        split = [words_of(f) for f in forms]
        if all(len(s) == 1 for s in split):
            return frozenset(s[0] for s in split)
    if len(tokens) >= 3 and tokens[0] == "(" and tokens[-1] == ")" and "(" not in tokens[1:]:
        inner = [t for t in tokens[1:-1] if t != "|"]
        plain = not any(t[0] in "@*.<" or "{" in t for t in inner)
        single = all(len(words_of(t)) == 1 for t in inner)
        if plain and single and len(inner) * 2 - 1 == len(tokens) - 2:
            return frozenset(words_of(t)[0] for t in inner)
    return frozenset()


def _entry(line: str, macros: dict[str, list[str]], where: str) -> Entry:
    weak = line.startswith("~")
    exception = line.startswith("!")
    body = line[1:].strip() if weak or exception else line
    tokens = _TOKEN.findall(body)
    parser = _Parser(tokens, macros, where)
    regex, needs, first, nullable, _ = parser.seq(())
    if not needs:
        raise PolicyError(f"{where}: an entry needs at least one word that is not optional")
    return Entry(
        source=where,
        pattern=regex,
        anchors=frozenset(_best(needs)),
        words=frozenset(parser.words),
        weak=weak,
        exception=exception,
        single=_single_words(tokens),
        needs=tuple(dict.fromkeys(needs)),
        firsts=None if nullable else first,
    )


def parse_lexicon(text: str, name: str) -> list[Entry]:
    """Every entry of a lexicon file; errors name the file and line."""
    macros: dict[str, list[str]] = {}
    entries: list[Entry] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        where = f"{name}:{number}"
        if line.startswith("@") and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            macros[key] = _TOKEN.findall(value)
            continue
        try:
            entries.append(_entry(line, macros, where))
        except (IndexError, re.error) as exc:
            raise PolicyError(f"{where}: not a valid entry ({exc})") from None
    return entries
