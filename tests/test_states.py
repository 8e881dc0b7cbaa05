"""The state machines, the lead's and the outbox message's: each one table."""

from __future__ import annotations

import pytest

from leadctl.errors import InvalidTransition
from leadctl.states import (
    MESSAGE_TRANSITIONS,
    TRANSITIONS,
    Action,
    MessageAction,
    MessageStatus,
    State,
    message_move,
    target_state,
)


def test_reach_out_and_reopen() -> None:
    assert target_state(Action.REACH_OUT, State.PENDING) == State.REACHED_OUT
    assert target_state(Action.REOPEN, State.REACHED_OUT) == State.PENDING


def test_asking_for_the_current_state_changes_nothing() -> None:
    assert target_state(Action.REACH_OUT, State.REACHED_OUT) is None
    assert target_state(Action.REOPEN, State.PENDING) is None


def test_every_action_has_a_row_and_moves_between_known_states() -> None:
    assert set(TRANSITIONS) == set(Action)
    for sources, target in TRANSITIONS.values():
        assert sources <= set(State) and target in State


def test_a_move_outside_the_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TRANSITIONS, Action.REOPEN, (frozenset(), State.PENDING))
    with pytest.raises(InvalidTransition, match="cannot reopen a lead that is REACHED_OUT"):
        target_state(Action.REOPEN, State.REACHED_OUT)


def test_the_outbox_table_holds_exactly_the_moves_of_a_message() -> None:
    p, sending, sent, dead = MessageStatus
    edges = {(src, target) for sources, target in MESSAGE_TRANSITIONS.values() for src in sources}
    assert set(MESSAGE_TRANSITIONS) == set(MessageAction)
    # pending→pending is a retry of a waiting message; sending→sending a claim of a message
    # whose sender died (its lease lapsed).
    assert edges == {
        (p, sending),
        (sending, sending),
        (sending, sent),
        (sending, p),
        (sending, dead),
        (dead, p),
        (p, p),
    }
    assert message_move(MessageAction.RETRY) == (["dead", "pending"], "pending")
