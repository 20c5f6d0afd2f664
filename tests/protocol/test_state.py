from __future__ import annotations

import itertools

import pytest

from wavecast.exceptions import LocalProtocolError
from wavecast.protocol import CLOSED, CLOSING, CONNECTING, OPEN, TRANSITIONS, Action, Protocol, Side, State, next_state

# The table, written out again: a change to it must be deliberate.
EXPECTED = {
    (CONNECTING, Action.SEND_REQUEST): CONNECTING,
    (CONNECTING, Action.RECEIVE_REQUEST): CONNECTING,
    (CONNECTING, Action.SEND_RESPONSE): CONNECTING,
    (CONNECTING, Action.ACCEPT): OPEN,
    (CONNECTING, Action.REJECT): CLOSED,
    (CONNECTING, Action.FAIL): CLOSED,
    (CONNECTING, Action.RECEIVE_EOF): CLOSED,
    (OPEN, Action.SEND_DATA): OPEN,
    (OPEN, Action.SEND_PING): OPEN,
    (OPEN, Action.SEND_PONG): OPEN,
    (OPEN, Action.SEND_CLOSE): CLOSING,
    (OPEN, Action.RECEIVE_CLOSE): CLOSING,
    (OPEN, Action.FAIL): CLOSING,
    (OPEN, Action.RECEIVE_EOF): CLOSED,
    (CLOSING, Action.SEND_CLOSE): CLOSING,
    (CLOSING, Action.RECEIVE_CLOSE): CLOSING,
    (CLOSING, Action.FAIL): CLOSING,
    (CLOSING, Action.RECEIVE_EOF): CLOSED,
    (CLOSED, Action.RECEIVE_EOF): CLOSED,
    (CLOSED, Action.FAIL): CLOSED,
}


def test_states() -> None:
    assert [state.name for state in State] == ["CONNECTING", "OPEN", "CLOSING", "CLOSED"]
    assert tuple(State) == (CONNECTING, OPEN, CLOSING, CLOSED)


def test_table_covers_every_state() -> None:
    assert set(TRANSITIONS) == set(State)
    assert {(state, action): new for state, row in TRANSITIONS.items() for action, new in row.items()} == EXPECTED


@pytest.mark.parametrize(("state", "action"), list(itertools.product(State, Action)))
def test_every_state_and_action(state: State, action: Action) -> None:
    if (state, action) in EXPECTED:
        assert next_state(state, action) is EXPECTED[state, action]
    else:
        with pytest.raises(LocalProtocolError) as exc_info:
            next_state(state, action)
        assert str(exc_info.value) == f"can't {action.value} when state is {state.name}"
        assert exc_info.value.__cause__ is None
        assert exc_info.value.__suppress_context__


def test_messages_read_well() -> None:
    with pytest.raises(LocalProtocolError, match=r"^can't send data when state is CLOSING$"):
        next_state(CLOSING, Action.SEND_DATA)
    with pytest.raises(LocalProtocolError, match=r"^can't complete the opening handshake when state is OPEN$"):
        next_state(OPEN, Action.ACCEPT)


def test_protocol_follows_the_table() -> None:
    protocol = Protocol(Side.SERVER)
    protocol.send_close()
    with pytest.raises(LocalProtocolError) as exc_info:
        protocol.send_text("late")
    assert str(exc_info.value) == "can't send data when state is CLOSING"
    protocol.receive_eof()
    assert protocol.state is CLOSED
    with pytest.raises(LocalProtocolError, match=r"^can't send a close frame when state is CLOSED$"):
        protocol.send_close()
