"""The connection state machine, as a table (the shape of :mod:`wavecast.transitions`).

Only :class:`~wavecast.protocol.connection.Protocol` assigns a state, through
:func:`next_state`; a transition that is not in :data:`TRANSITIONS` raises
:exc:`~wavecast.exceptions.LocalProtocolError` saying "can't X when state is Y".
"""

from __future__ import annotations

import enum

from .. import transitions
from ..exceptions import LocalProtocolError

__all__ = [
    "CLOSED",
    "CLOSING",
    "CONNECTING",
    "OPEN",
    "TRANSITIONS",
    "Action",
    "State",
    "next_state",
]


class State(enum.IntEnum):
    """The state of a WebSocket connection (RFC 6455 section 4 and 7)."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


CONNECTING, OPEN, CLOSING, CLOSED = State


class Action(enum.Enum):
    """What can happen to a connection; the value completes "can't ... when state is X"."""

    SEND_REQUEST = "send a handshake request"
    RECEIVE_REQUEST = "receive a handshake request"
    SEND_RESPONSE = "send a handshake response"
    ACCEPT = "complete the opening handshake"
    REJECT = "reject the opening handshake"
    SEND_DATA = "send data"
    SEND_PING = "send a ping"
    SEND_PONG = "send a pong"
    SEND_CLOSE = "send a close frame"
    RECEIVE_CLOSE = "receive a close frame"
    FAIL = "fail the connection"
    RECEIVE_EOF = "receive EOF"


TRANSITIONS: dict[State, dict[Action, State]] = {
    CONNECTING: {
        Action.SEND_REQUEST: CONNECTING,
        Action.RECEIVE_REQUEST: CONNECTING,
        Action.SEND_RESPONSE: CONNECTING,
        Action.ACCEPT: OPEN,
        Action.REJECT: CLOSED,
        Action.FAIL: CLOSED,
        Action.RECEIVE_EOF: CLOSED,
    },
    OPEN: {
        Action.SEND_DATA: OPEN,
        Action.SEND_PING: OPEN,
        Action.SEND_PONG: OPEN,
        Action.SEND_CLOSE: CLOSING,
        Action.RECEIVE_CLOSE: CLOSING,
        Action.FAIL: CLOSING,
        Action.RECEIVE_EOF: CLOSED,
    },
    CLOSING: {
        # The reply to a close frame that the peer sent first.
        Action.SEND_CLOSE: CLOSING,
        # The reply to a close frame that this side sent first.
        Action.RECEIVE_CLOSE: CLOSING,
        Action.FAIL: CLOSING,
        Action.RECEIVE_EOF: CLOSED,
    },
    CLOSED: {
        # receive_eof() is idempotent, and failing a closed connection changes nothing.
        Action.RECEIVE_EOF: CLOSED,
        Action.FAIL: CLOSED,
    },
}


def next_state(state: State, action: Action) -> State:
    """Return the state after ``action``, or raise :exc:`LocalProtocolError` if it is not allowed."""
    return transitions.next_state(TRANSITIONS, state, action, LocalProtocolError)
