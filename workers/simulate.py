"""A synthetic year of a charity's group, for ``process``, ``replay`` and the benchmarks.

Why a generator and not a recorded file: real group posts carry children's names,
parents' contacts and worse (E4); a seeded generator gives the same realistic mix
every time with none of that. Every text is assembled from the word pools below;
people are ids and refs (``mem-00042``, ``guardian-0007-a``), phone numbers come
from Ofcom's range reserved for drama (07700 900xxx) and emails from the reserved
``example.org`` domain, so nothing in a generated file is anybody's data.

The mix: mostly benign chatter; a few percent of posts break the code (profanity
most, then harassment, spam, personal information, blocked links, rarely threats,
hate, violence or sexual content); shortened links a person must check; photos of
children, a few without consent on record; complaints, allegations of every
category, reviews by the safeguarding leads (some late, so deadlines pass),
appeals, consent withdrawals, new guardians and members leaving (S4).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["Mix", "Simulation", "simulate"]

EVENTS = (
    "bake sale",
    "sports day",
    "summer fair",
    "swimming gala",
    "quiz night",
    "coffee morning",
    "litter pick",
    "panto trip",
    "craft club",
    "sponsored walk",
)
DAYS = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "next week",
    "the weekend",
)
ITEMS = (
    "a packed lunch",
    "wellies",
    "a water bottle",
    "sun cream",
    "a raincoat",
    "a change of clothes",
    "a small donation for the raffle",
)
GROUPS = (
    "under-9s",
    "under-11s",
    "choir",
    "drama club",
    "reading buddies",
    "football",
    "homework club",
    "art group",
)
BENIGN = (
    "Thanks to all the volunteers who helped at the {event} on {day}.",
    "Does anyone know what time the {event} starts on {day}?",
    "Reminder: the {event} is on {day}, please bring {item}.",
    "Lovely to see so many families at the {event}, well done everyone.",
    "Great work by the {group} this week, so proud of them all.",
    "Is the {group} still meeting on {day} or has it moved?",
    "Could we have more helpers for the {event}? Even an hour makes a difference.",
    "Lost property from the {event}: a blue jumper and {item}, ask at the front desk.",
    "The {group} had a brilliant time, thank you to the coaches.",
    "Just a note that parking is tight on {day}, please walk if you can.",
    "Who is doing the lift share for the {group} on {day}?",
    "The {event} raised a lot for the minibus fund, thank you all!",
)
PROFANITY = (
    "This new rota is total shit, who organised it?",
    "Absolute bollocks that the {event} got moved again.",
    "Bit pissed off that nobody told us about the {event} change.",
    "What a load of bullshit from the {group} organisers.",
)
HARASSMENT = (
    "You are so pathetic, nobody likes you.",
    "Honestly you're such a loser, everyone hates you.",
    "What an idiot, you should be ashamed of that post.",
)
SPAM = (
    "Earn money from home, dm me for details!",
    "Use my referral code SAVE20 at checkout, limited time offer.",
    "Free gift card giveaway, click here to claim it.",
)
THREAT = (
    "Watch your back at pickup tomorrow.",
    "I know where your kids go to school.",
    "I'll find you after the {event}, you're dead.",
)
HATE = ("People like that should go back to their own country.",)
VIOLENCE = ("Has anyone seen the video of the beheading going round?",)
SEXUAL = ("Anyone want some xxx videos cheap?",)
PERSONAL = (
    "Call me on 07700 900{n:03d} about the lift share for the {group}.",
    "Email me at parent{n}@example.org if you have spare {item}.",
)
BAD_LINK = ("Best odds this weekend at https://bet365.com/offers/{n}",)
REVIEW_LINK = ("Tickets for the {event} are here: https://bit.ly/sim{n}",)
PHOTO = ("Photos from the {event}!", "Some pictures of the {group} on {day}.")
COMPLAINT = (
    "A post in the group this week upset my family, please look at it.",
    "I am unhappy with how the {event} was organised.",
    "Please can someone check the comments under the {group} thread.",
)
ALLEGATION = (
    "Concern raised after the {event}, details given to the lead in person.",
    "Report from a parent about messages to a child, details held offline.",
)
NOTE = ("Reviewed with the deputy.", "Spoken to the family.", "No further action needed.")
CATEGORIES = ("cyberbullying", "grooming", "abuse", "illegal_use", "filtering_breach", "other")
ROLES = ("staff", "volunteer", "member", "child", "unknown")
SOURCE = "facebook/group/sim"
BREACHES = (
    (0.40, "profanity", PROFANITY),
    (0.55, "harassment", HARASSMENT),
    (0.68, "spam", SPAM),
    (0.80, "personal_info", PERSONAL),
    (0.88, "bad_link", BAD_LINK),
    (0.94, "threat", THREAT),
    (0.96, "hate", HATE),
    (0.98, "violence", VIOLENCE),
)


@dataclass(frozen=True)
class Mix:
    """Rates of the simulated year (per post unless named otherwise)."""

    posts_per_member_day: float = 0.15
    breach: float = 0.03
    review_link: float = 0.004
    photo: float = 0.12
    complaint: float = 0.004
    allegation_per_day: float = 0.08
    appeal: float = 0.15
    removal_request_per_member: float = 0.01
    withdrawal_per_child: float = 0.05
    consent_share: float = 0.85
    late_review: float = 0.25
    never_reviewed: float = 0.02
    #: (cumulative share, kind, texts) of breaching posts; the rest are sexual content
    breaches: tuple[tuple[float, str, tuple[str, ...]], ...] = ()


@dataclass
class Simulation:
    """Builds the events of ``days`` days for ``members`` members, seeded."""

    members: int
    days: int
    seed: int = 1
    start: datetime = datetime(2026, 1, 5, 7, 0, tzinfo=UTC)
    mix: Mix = field(default_factory=Mix)
    _queue: list[tuple[datetime, int, dict[str, Any]]] = field(default_factory=list)
    _count: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.children = [f"child-{i:04d}" for i in range(1, max(2, self.members // 2) + 1)]
        self.consented: set[str] = set()
        self.left: set[str] = set()

    # -- envelopes ----------------------------------------------------------------
    def _emit(self, when: datetime, type_: str, source: str, data: dict[str, Any]) -> None:
        self._count += 1
        event = {
            "specversion": "1.0",
            "id": f"sim{self.seed}-{self._count:07d}",
            "source": source,
            "type": f"esafety.{type_}",
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "datacontenttype": "application/json",
            "data": data,
        }
        heapq.heappush(self._queue, (when, self._count, event))

    def _text(self, templates: tuple[str, ...]) -> str:
        r = self.rng
        return r.choice(templates).format(
            event=r.choice(EVENTS),
            day=r.choice(DAYS),
            item=r.choice(ITEMS),
            group=r.choice(GROUPS),
            n=r.randrange(1000),
        )

    def _review(self, when: datetime, case_id: str, decision: str, by: str = "dsl") -> None:
        data: dict[str, Any] = {"case_id": case_id, "reviewer_ref": by, "decision": decision}
        if self.rng.random() < 0.3:
            data["note"] = self._text(NOTE)
        self._emit(when, "case.reviewed", "esafety/cli", data)

    def _later(self, when: datetime, low_h: float, high_h: float) -> datetime:
        return when + timedelta(hours=self.rng.uniform(low_h, high_h))

    # -- registers ------------------------------------------------------------------
    def _registers(self) -> None:
        for index, child in enumerate(self.children):
            when = self.start + timedelta(seconds=index)
            count = 1 if self.rng.random() < 0.6 else 2
            guardians = [{"guardian_ref": f"guardian-{child[6:]}-{'ab'[g]}"} for g in range(count)]
            self._emit(
                when,
                "guardian.registered",
                "staff/forms",
                {"child_id": child, "guardians": guardians},
            )
            if self.rng.random() < self.mix.consent_share:
                self.consented.add(child)
                self._emit(
                    when,
                    "consent.recorded",
                    "staff/forms",
                    {
                        "child_id": child,
                        "purposes": ["facebook_group", "newsletter"],
                        "evidence_ref": f"consent-form-{child[6:]}",
                    },
                )

    def _withdrawal(self, when: datetime) -> None:
        child = self.rng.choice(self.children)
        self.consented.discard(child)
        self._emit(
            when,
            "consent.withdrawn",
            "staff/forms",
            {"child_id": child, "purposes": ["facebook_group"]},
        )

    # -- posts ------------------------------------------------------------------------
    def _breach_text(self) -> tuple[str, str]:
        """A breaching text and what it is (a threat is held for the lead, S3)."""
        r = self.rng.random()
        for share, kind, pool in self.mix.breaches or BREACHES:
            if r < share:
                return kind, self._text(pool)
        return "sexual", self._text(SEXUAL)

    def _photo(self) -> tuple[str, list[dict[str, Any]]]:
        depicted = self.rng.sample(self.children, k=min(len(self.children), self.rng.randint(1, 3)))
        media = [{"media_id": f"img-{self._count + 1:07d}", "depicts_children": depicted}]
        return self._text(PHOTO), media

    def _post(self, when: datetime, member: str) -> None:
        post_id = f"p{self.seed}-{self._count + 1:07d}"
        data: dict[str, Any] = {"post_id": post_id, "member_id": member}
        roll = self.rng.random()
        mix = self.mix
        held = ""
        breach = False
        if roll < mix.breach:
            kind, text = self._breach_text()
            breach, held = True, "threat" if kind == "threat" else ""
        elif roll < mix.breach + mix.review_link:
            text, held = self._text(REVIEW_LINK), "review"
        elif roll < mix.breach + mix.review_link + mix.photo:
            text, data["media"] = self._photo()
            breach = any(
                c not in self.consented for m in data["media"] for c in m["depicts_children"]
            )
        else:
            text = self._text(BENIGN)
        data["text"] = text
        self._emit(when, "post.submitted", SOURCE, data)
        self._follow_post(when, f"post:{post_id}", member, held=held, breach=breach)

    def _follow_post(
        self, when: datetime, case_id: str, member: str, *, held: str, breach: bool
    ) -> None:
        """Held posts are reviewed; some posts draw a complaint; some sanctions an appeal."""
        r = self.rng
        if held == "review":
            self._review(
                self._later(when, 2, 40), case_id, r.choice(("uphold", "dismiss", "dismiss"))
            )
        elif held == "threat":
            self._review(self._later(when, 0.2, 3), case_id, "acknowledge")
            self._review(self._later(when, 4, 48), case_id, "close")
        if r.random() < self.mix.complaint * (10 if breach else 1):
            self._complaint(self._later(when, 0.5, 30), case_id, member)
        if breach and not held and r.random() < self.mix.appeal:
            self._appeal(self._later(when, 24, 24 * 10), case_id, member)

    # -- complaints, appeals, allegations ---------------------------------------------
    def _escalated(self, when: datetime, case_id: str, first: str, last: str) -> None:
        """A lead acknowledges (sometimes after the deadline), then decides and closes."""
        r = self.rng
        if r.random() < self.mix.never_reviewed:
            return
        late = r.random() < self.mix.late_review
        seen = self._later(when, 26, 120) if late else self._later(when, 0.1, 0.9)
        self._review(seen, case_id, "acknowledge", by=r.choice(("dsl", "deputy-dsl")))
        middle = self._later(seen, 1, 48)
        if first:
            self._review(middle, case_id, first)
        self._review(self._later(middle, 1, 72), case_id, last)

    def _complaint(self, when: datetime, post_case: str, member: str) -> None:
        complaint_id = f"cmp{self.seed}-{self._count + 1:07d}"
        data: dict[str, Any] = {
            "complaint_id": complaint_id,
            "complainant_ref": f"parent-ref-{self.rng.randrange(1, 400):03d}",
            "text": self._text(COMPLAINT),
            "about_post_id": post_case.removeprefix("post:"),
            "about_member_id": member,
            "channel": self.rng.choice(("email", "form", "phone")),
        }
        self._emit(when, "complaint.received", "inbox/complaints", data)
        last = self.rng.choice(("uphold", "dismiss", "close"))
        first = "refer_external" if self.rng.random() < 0.05 else ""
        self._escalated(when, f"complaint:{complaint_id}", first, last)

    def _appeal(self, when: datetime, post_case: str, member: str) -> None:
        appeal_id = f"apl{self.seed}-{self._count + 1:07d}"
        data = {
            "appeal_id": appeal_id,
            "member_id": member,
            "case_id": post_case,
            "text": "I would like this decision looked at again, please.",
        }
        self._emit(when, "appeal.lodged", "inbox/appeals", data)
        decision = "overturn" if self.rng.random() < 0.35 else "dismiss"
        self._review(self._later(when, 12, 24 * 7), f"appeal:{appeal_id}", decision, "deputy-dsl")

    def _allegation(self, when: datetime) -> None:
        r = self.rng
        allegation_id = f"alg{self.seed}-{self._count + 1:07d}"
        children = r.sample(self.children, k=min(len(self.children), r.randint(0, 2)))
        data: dict[str, Any] = {
            "allegation_id": allegation_id,
            "reporter_ref": f"staff-{r.randrange(1, 30):02d}",
            "category": r.choice(CATEGORIES),
            "subject_role": r.choice(ROLES),
            "children": children,
            "text": self._text(ALLEGATION),
        }
        if r.random() < 0.7:
            data["subject_ref"] = f"subject-{r.randrange(1, 200):03d}"
        self._emit(when, "allegation.reported", "staff/forms", data)
        first = r.choice(("notify_parents", "withhold_parent_notification", "refer_external"))
        self._escalated(when, f"allegation:{allegation_id}", first, "close")

    # -- the year ---------------------------------------------------------------------
    def _day(self, day: int) -> None:
        r, mix = self.rng, self.mix
        base = self.start + timedelta(days=day)
        posts = sum(1 for _ in range(self.members) if r.random() < mix.posts_per_member_day)
        for _ in range(posts):
            member = f"mem-{r.randrange(1, self.members + 1):05d}"
            if member not in self.left:
                self._post(base + timedelta(seconds=r.randrange(1, 16 * 3600)), member)
        if r.random() < mix.allegation_per_day:
            self._allegation(base + timedelta(seconds=r.randrange(1, 16 * 3600)))
        if r.random() < mix.removal_request_per_member * self.members / max(self.days, 1):
            member = f"mem-{r.randrange(1, self.members + 1):05d}"
            self.left.add(member)
            self._emit(
                base + timedelta(hours=15),
                "member.removal_requested",
                SOURCE,
                {"member_id": member},
            )
        if r.random() < mix.withdrawal_per_child * len(self.children) / max(self.days, 1):
            self._withdrawal(base + timedelta(hours=8))

    def events(self) -> Iterator[dict[str, Any]]:
        """The events in time order (ties in the order they were made)."""
        self._registers()
        for day in range(self.days):
            self._day(day)
            horizon = self.start + timedelta(days=day + 1)
            while self._queue and self._queue[0][0] < horizon:
                yield heapq.heappop(self._queue)[2]
        while self._queue:
            yield heapq.heappop(self._queue)[2]


def simulate(
    members: int, days: int, seed: int = 1, *, start: datetime | None = None, mix: Mix | None = None
) -> Iterator[dict[str, Any]]:
    """The events of a simulated charity group, deterministic by ``seed``."""
    simulation = Simulation(members, days, seed, mix=mix or Mix())
    if start is not None:
        simulation.start = start
    return simulation.events()
