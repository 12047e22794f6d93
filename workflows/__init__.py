"""The pure layer: policy, screening, the case state machine and ``decide``.

Nothing here does I/O or reads the clock: a policy can be replayed over recorded
events in a plain loop.
"""

from .decide import decide, decide_command, decide_register, decide_timer
from .ids import CaseKind, Clause, EffectKind, MemberStatus, Outcome, RuleId, State, TimerKind
from .model import AuditEntry, Case, Command, Decision, Effect, Member, Timer
from .policy import Policy, default_policy, load_policy, parse_policy
from .registers import ChildRecord, Registers
from .reviews import allowed_decisions

__all__ = [
    "AuditEntry",
    "Case",
    "CaseKind",
    "ChildRecord",
    "Clause",
    "Command",
    "Decision",
    "Effect",
    "EffectKind",
    "Member",
    "MemberStatus",
    "Outcome",
    "Policy",
    "Registers",
    "RuleId",
    "State",
    "Timer",
    "TimerKind",
    "allowed_decisions",
    "decide",
    "decide_command",
    "decide_register",
    "decide_timer",
    "default_policy",
    "load_policy",
    "parse_policy",
]
