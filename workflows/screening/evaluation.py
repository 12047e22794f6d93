"""Measure screening on a labelled set: precision, recall and false-positive rate per rule.

A sample is one JSON object a line: ``id``, ``text``, ``labels`` (the rule ids a
person would flag; empty for a benign post), and optionally ``links``, ``media``
(``media_id``, ``depicts_children``), ``consented`` (children with consent on
record for group posts), ``member`` and ``time`` (posts of one member are replayed
in file order, so repeats are measured as the engine sees them).

A rule counts as flagged whether the match is clear (acted on) or weak (sent to a
person): both mean the post did not pass unseen. ``acted`` counts the clear ones.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ...events.models import Media
from ..ids import RuleId
from ..policy import Policy
from ..registers import ChildRecord, Registers
from . import screen
from .match import Confidence, Match
from .spam import post_digest, recent_digests, remember_post

__all__ = ["RuleScore", "Sample", "Scores", "evaluate", "read_samples"]

_EPOCH = "2026-01-01T00:00:00Z"


@dataclass(frozen=True, slots=True)
class Sample:
    id: str
    text: str
    labels: frozenset[str]
    links: tuple[str, ...] = ()
    media: tuple[Media, ...] = ()
    consented: tuple[str, ...] = ()
    member: str = ""
    time: str = _EPOCH


@dataclass(slots=True)
class RuleScore:
    """Counts for one rule id over the whole set."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    acted: int = 0
    missed: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def fpr(self) -> float:
        return self.fp / (self.fp + self.tn) if self.fp + self.tn else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "positives": self.tp + self.fn,
            "tp": self.tp,
            "fp": self.fp,
            "fn": self.fn,
            "acted": self.acted,
            "precision": round(self.precision, 4),
            "recall": round(self.recall, 4),
            "fpr": round(self.fpr, 4),
            "missed": self.missed,
            "wrong": self.wrong,
        }


@dataclass(slots=True)
class Scores:
    posts: int = 0
    benign: int = 0
    benign_flagged: int = 0
    rules: dict[str, RuleScore] = field(default_factory=dict)

    @property
    def benign_flag_rate(self) -> float:
        return self.benign_flagged / self.benign if self.benign else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "posts": self.posts,
            "benign": self.benign,
            "benign_flagged": self.benign_flagged,
            "benign_flag_rate": round(self.benign_flag_rate, 4),
            "rules": {rule: score.as_dict() for rule, score in self.rules.items()},
        }


def _sample(raw: dict[str, object], line: int) -> Sample:
    labels = raw.get("labels", [])
    if not isinstance(labels, list) or not all(label in set(RuleId) for label in labels):
        raise ValueError(f"line {line}: labels must be a list of rule ids")
    media = tuple(Media.model_validate(m) for m in raw.get("media", []))  # type: ignore[attr-defined]
    return Sample(
        id=str(raw.get("id", f"line-{line}")),
        text=str(raw["text"]),
        labels=frozenset(labels),
        links=tuple(raw.get("links", [])),  # type: ignore[arg-type]
        media=media,
        consented=tuple(raw.get("consented", [])),  # type: ignore[arg-type]
        member=str(raw.get("member", "")),
        time=str(raw.get("time", _EPOCH)),
    )


def read_samples(lines: Iterable[str]) -> list[Sample]:
    """Samples from JSON lines; a bad line raises ``ValueError`` naming it."""
    out = []
    for number, line in enumerate(lines, start=1):
        if line.strip():
            try:
                out.append(_sample(json.loads(line), number))
            except (KeyError, json.JSONDecodeError) as exc:
                raise ValueError(f"line {number}: {exc}") from None
    return out


def _registers(sample: Sample, purpose: str) -> Registers:
    children = {c for m in sample.media for c in m.depicts_children}
    return Registers(
        {c: ChildRecord(c, consent={purpose: c in sample.consented}) for c in children}
    )


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


_History = dict[str, tuple[tuple[str, str], ...]]


def _flagged(sample: Sample, policy: Policy, history: _History) -> list[Match]:
    """Screen one sample as the engine would, with its author's recent posts."""
    recent = history.get(sample.member, ()) if sample.member else ()
    digests = recent_digests(recent, _at(sample.time), policy)
    matches = screen(
        sample.text,
        policy,
        _registers(sample, policy.consent.group_post_purpose),
        links=sample.links,
        media=sample.media,
        recent=digests,
    )
    if sample.member:
        digest = post_digest(sample.text, policy)
        history[sample.member] = remember_post(recent, digest, sample.time, policy)
    return matches


def evaluate(samples: Iterable[Sample], policy: Policy) -> Scores:
    """Screen every sample in order and count agreements with its labels."""
    scores = Scores(rules={rule.value: RuleScore() for rule in RuleId})
    history: dict[str, tuple[tuple[str, str], ...]] = {}
    for sample in samples:
        matches = _flagged(sample, policy, history)
        flagged = {m.rule.value for m in matches}
        clear = {m.rule.value for m in matches if m.confidence is Confidence.CLEAR}
        scores.posts += 1
        if not sample.labels:
            scores.benign += 1
            scores.benign_flagged += bool(flagged)
        for rule, score in scores.rules.items():
            _count(score, sample.id, rule in sample.labels, rule in flagged, rule in clear)
    return scores


def _count(score: RuleScore, sample_id: str, labelled: bool, flagged: bool, clear: bool) -> None:
    if labelled and flagged:
        score.tp += 1
        score.acted += clear
    elif labelled:
        score.fn += 1
        score.missed.append(sample_id)
    elif flagged:
        score.fp += 1
        score.wrong.append(sample_id)
    else:
        score.tn += 1
