"""The lead state machine: one table of allowed transitions and the names of the actions."""

from __future__ import annotations

from enum import StrEnum

from leadctl.errors import InvalidTransition


class State(StrEnum):
    PENDING = "PENDING"
    REACHED_OUT = "REACHED_OUT"


class Action(StrEnum):
    REACH_OUT = "reach-out"
    REOPEN = "reopen"


# action → (states it may start from, state it leads to)
TRANSITIONS: dict[Action, tuple[frozenset[State], State]] = {
    Action.REACH_OUT: (frozenset({State.PENDING}), State.REACHED_OUT),
    Action.REOPEN: (frozenset({State.REACHED_OUT}), State.PENDING),
}


def target_state(action: Action, current: State) -> State | None:
    """The state `action` moves a lead in `current` to; None when it is there already.

    Raises InvalidTransition for any move the table does not allow.
    """
    sources, target = TRANSITIONS[action]
    if current == target:
        return None
    if current not in sources:
        raise InvalidTransition(f"cannot {action} a lead that is {current}")
    return target


def parse_state(text: str) -> State:
    """`PENDING`, `pending`, `REACHED_OUT`, `reached-out` … → State; ValueError otherwise."""
    key = text.strip().upper().replace("-", "_")
    try:
        return State(key)
    except ValueError:
        choices = ", ".join(s.value for s in State)
        raise ValueError(f"state must be one of {choices}, not {text!r}") from None
