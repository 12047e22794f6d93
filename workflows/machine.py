"""The case state machine, declared as data and built once per process.

``transitions`` checks every step: a trigger the current state does not allow
raises instead of silently moving a case. The Machine is built once; each thread
keeps one light cursor model registered on it, and a step sets the cursor to the
case's state and fires the trigger. No callbacks, so no I/O can hide in a step.
"""

from __future__ import annotations

import threading
from typing import Any

from transitions import Machine, MachineError

from .ids import State

__all__ = ["STATES", "TRANSITIONS", "InvalidStep", "step"]

STATES = [s.value for s in State]
_OPEN = [s.value for s in State if s is not State.CLOSED]
_REVIEWABLE = [State.ESCALATION.value, State.PARENT_NOTIFICATION.value]

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "screen", "source": State.RECEIVED.value, "dest": State.SCREENING.value},
    {"trigger": "warn", "source": [State.SCREENING.value, State.ESCALATION.value],
     "dest": State.WARNING.value},
    {"trigger": "escalate", "source": [State.RECEIVED.value, State.SCREENING.value,
                                       State.WARNING.value], "dest": State.ESCALATION.value},
    {"trigger": "notify_parents", "source": [State.SCREENING.value, State.WARNING.value,
                                             State.ESCALATION.value],
     "dest": State.PARENT_NOTIFICATION.value},
    {"trigger": "close", "source": _OPEN, "dest": State.CLOSED.value},
    # Steps that keep a case where it is but still write an audit entry.
    {"trigger": "acknowledge", "source": _REVIEWABLE, "dest": "="},
    {"trigger": "remind", "source": _REVIEWABLE, "dest": "="},
    {"trigger": "refer_external", "source": _REVIEWABLE, "dest": "="},
    {"trigger": "withhold_parent_notification", "source": _REVIEWABLE, "dest": "="},
    {"trigger": "record", "source": STATES, "dest": "="},
]  # fmt: skip


class InvalidStep(Exception):
    """A trigger that the state does not allow (a bug in ``decide``, never user input)."""


class _Cursor:
    state: str


def _build() -> Machine:
    return Machine(
        model=None,
        states=STATES,
        transitions=TRANSITIONS,
        initial=State.RECEIVED.value,
        auto_transitions=False,
        ignore_invalid_triggers=False,
    )


_MACHINE = _build()
_local = threading.local()


def _cursor() -> _Cursor:
    cursor: _Cursor | None = getattr(_local, "cursor", None)
    if cursor is None:
        cursor = _Cursor()
        _MACHINE.add_model(cursor, initial=State.RECEIVED.value)
        _local.cursor = cursor
    return cursor


_STEPS: dict[tuple[State, str], State] = {}


def step(state: State, trigger: str) -> State:
    """The state after firing ``trigger`` in ``state``; raises :class:`InvalidStep`.

    The machine is static data with no callbacks or conditions, so an allowed step
    always gives the same state: the machine answers once, and the answer is kept
    (a replay of a year takes hundreds of thousands of steps, E6)."""
    known = _STEPS.get((state, trigger))
    if known is not None:
        return known
    new = _fire(state, trigger)
    _STEPS[(state, trigger)] = new
    return new


def _fire(state: State, trigger: str) -> State:
    cursor = _cursor()
    _MACHINE.set_state(state.value, model=cursor)
    try:
        cursor.trigger(trigger)  # type: ignore[attr-defined]
    except (MachineError, AttributeError) as exc:
        raise InvalidStep(f"{trigger!r} is not allowed in state {state.value!r}") from exc
    return State(cursor.state)
