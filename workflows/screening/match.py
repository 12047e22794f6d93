"""What a screening rule returns: the rule, the clauses and where, never the words."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..ids import Clause, RuleId

__all__ = ["Confidence", "Match"]


class Confidence(StrEnum):
    """A clear match acts on its own; a weak one sends the case to a person (fairness, E1)."""

    CLEAR = "clear"
    WEAK = "weak"


@dataclass(frozen=True, slots=True)
class Match:
    """Rule, clauses and the character span in the original text; never the matched words."""

    rule: RuleId
    clauses: tuple[Clause, ...]
    span: tuple[int, int]
    confidence: Confidence = Confidence.CLEAR
    field: str = "text"
    # which list entry matched ("lexicon/profanity.txt:12"): the why, never the words
    entry: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "rule": str(self.rule),
            "clauses": [str(c) for c in self.clauses],
            "span": list(self.span),
            "confidence": str(self.confidence),
            "field": self.field,
            "entry": self.entry,
        }
