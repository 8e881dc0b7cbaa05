"""The two state machines, the lead's and the outbox message's: each a table of allowed
transitions and the names of the actions."""

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


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    DEAD = "dead"


class MessageAction(StrEnum):
    CLAIM = "claim"
    DELIVER = "deliver"
    BACK_OFF = "back-off"  # a failed attempt, with attempts left
    GIVE_UP = "give-up"  # a failed attempt, the last one
    RELEASE = "release"  # claimed, not tried: the worker is stopping
    RETRY = "retry"  # an operator makes it due again


# action → (statuses it may start from, status it leads to). A `sending` message is claimed
# again only once its lease has lapsed (its sender died); the outbox's query says when.
MESSAGE_TRANSITIONS: dict[MessageAction, tuple[frozenset[MessageStatus], MessageStatus]] = {
    MessageAction.CLAIM: (
        frozenset({MessageStatus.PENDING, MessageStatus.SENDING}),
        MessageStatus.SENDING,
    ),
    MessageAction.DELIVER: (frozenset({MessageStatus.SENDING}), MessageStatus.SENT),
    MessageAction.BACK_OFF: (frozenset({MessageStatus.SENDING}), MessageStatus.PENDING),
    MessageAction.GIVE_UP: (frozenset({MessageStatus.SENDING}), MessageStatus.DEAD),
    MessageAction.RELEASE: (frozenset({MessageStatus.SENDING}), MessageStatus.PENDING),
    MessageAction.RETRY: (
        frozenset({MessageStatus.PENDING, MessageStatus.DEAD}),
        MessageStatus.PENDING,
    ),
}


def message_move(action: MessageAction) -> tuple[list[str], str]:
    """(the statuses `action` may start from, the status it leads to), as stored values."""
    sources, target = MESSAGE_TRANSITIONS[action]
    return sorted(status.value for status in sources), target.value
