"""``esafety bench screening``: posts screened per second on one core, beside a naive baseline.

The corpus is 300-character posts built from the labelled evaluation set: benign
parent-group chatter, with one post in ``breach_every`` carrying a breach (so the
slow path that finds spans and applies exceptions is measured too). The baseline,
measured in the same run on the same posts, is what a first screening would do:
one compiled ``\\bword\\b`` regular expression per listed word, searched in turn
over the lower-cased text, with no normalisation. Both run in this one process.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..workflows.policy import Policy
from ..workflows.screening import screen_text
from .clock import cpu_stopwatch, stopwatch

__all__ = ["ScreeningBench", "baseline_patterns", "build_corpus", "run_screening_bench"]

EVAL_DIR = Path(__file__).resolve().parent.parent / "workflows" / "data" / "eval"


@dataclass(frozen=True, slots=True)
class ScreeningBench:
    posts: int
    post_chars: int
    breach_share: float
    ours_per_s: float
    baseline_per_s: float
    baseline_patterns: int
    flagged_ours: int
    flagged_baseline: int
    clock: str = "wall"

    @property
    def ratio(self) -> float:
        return self.ours_per_s / self.baseline_per_s if self.baseline_per_s else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "posts": self.posts,
            "post_chars": self.post_chars,
            "breach_share": round(self.breach_share, 3),
            "ours_posts_per_s": round(self.ours_per_s),
            "baseline_posts_per_s": round(self.baseline_per_s),
            "ratio": round(self.ratio, 1),
            "baseline_patterns": self.baseline_patterns,
            "flagged_ours": self.flagged_ours,
            "flagged_baseline": self.flagged_baseline,
            "clock": self.clock,
            "method": "one process, one thread; same posts (the baseline on the first tenth); "
            "best of 3 alternating passes each",
        }


def _texts(lines: Sequence[str]) -> tuple[list[str], list[str]]:
    benign: list[str] = []
    breach: list[str] = []
    for line in lines:
        if line.strip():
            row = json.loads(line)
            (breach if row.get("labels") else benign).append(str(row["text"]))
    return benign, breach


def build_corpus(
    lines: Sequence[str], count: int, chars: int = 300, breach_every: int = 10
) -> list[str]:
    """``count`` posts of about ``chars`` characters, deterministic for a given input."""
    benign, breach = _texts(lines)
    posts = []
    cursor = 0
    for index in range(count):
        parts = [breach[index // breach_every % len(breach)]] if index % breach_every == 0 else []
        while sum(len(p) + 1 for p in parts) < chars:
            parts.append(benign[cursor % len(benign)])
            cursor += 7
        posts.append(" ".join(parts)[:chars])
    return posts


def baseline_patterns(policy: Policy) -> list[re.Pattern[str]]:
    """One ``\\bword\\b`` pattern per listed word and per phrase's key word (the naive way)."""
    lexicon = policy.screener.lexicon
    words = sorted(lexicon.term_keys | lexicon.anchor_keys)
    return [re.compile(r"\b" + re.escape(w) + r"\b") for w in words]


def _naive(patterns: list[re.Pattern[str]]) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        lowered = text.lower()
        return any(p.search(lowered) for p in patterns)

    return check


def _rate(check: Callable[[str], object], posts: Sequence[str], cpu: bool) -> float:
    elapsed = cpu_stopwatch() if cpu else stopwatch()
    for post in posts:
        check(post)
    return len(posts) / max(elapsed(), 1e-9)


def _best_rates(
    ours: Callable[[str], object],
    naive: Callable[[str], object],
    posts: Sequence[str],
    sample: Sequence[str],
    passes: int,
    cpu: bool,
) -> tuple[float, float]:
    """Best of ``passes`` for each, the two alternating so a busy machine slows both alike."""
    best_ours = best_naive = 0.0
    for _ in range(passes):
        best_ours = max(best_ours, _rate(ours, posts, cpu))
        best_naive = max(best_naive, _rate(naive, sample, cpu))
    return best_ours, best_naive


def run_screening_bench(
    policy: Policy,
    count: int = 20_000,
    chars: int = 300,
    breach_every: int = 10,
    passes: int = 3,
    cpu: bool = False,
) -> ScreeningBench:
    """Measure screening and the naive baseline on the same corpus, in this process."""
    lines = (EVAL_DIR / "dev.jsonl").read_text("utf-8").splitlines()
    posts = build_corpus(lines, count, chars, breach_every)
    patterns = baseline_patterns(policy)
    naive = _naive(patterns)
    ours = lambda text: screen_text(text, policy)  # noqa: E731
    _rate(ours, posts[:500], cpu)  # warm the caches (folding table, seen words, domains)
    baseline_posts = posts[: max(len(posts) // 10, 200)]
    ours_rate, naive_rate = _best_rates(ours, naive, posts, baseline_posts, passes, cpu)
    return ScreeningBench(
        posts=len(posts),
        post_chars=chars,
        breach_share=1 / breach_every,
        ours_per_s=ours_rate,
        baseline_per_s=naive_rate,
        baseline_patterns=len(patterns),
        flagged_ours=sum(1 for p in posts if screen_text(p, policy)),
        flagged_baseline=sum(1 for p in posts if naive(p)),
        clock="cpu" if cpu else "wall",
    )
