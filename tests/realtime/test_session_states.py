"""session: the state table of a client session, walked pair by pair."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from wavecast.exceptions import StateError
from wavecast.realtime import Node, Session
from wavecast.realtime.session import SESSION_TRANSITIONS, SessionAction, SessionState

from .helpers import FakeTransport, assert_step, assert_table

CONNECTING, CONNECTED, CLOSED = SessionState.CONNECTING, SessionState.CONNECTED, SessionState.CLOSED

CONNECT, CLOSE = SessionAction.CONNECT, SessionAction.CLOSE

# The table, written out again: a change to it must be deliberate.
ALLOWED = {
    (CONNECTING, CONNECT): CONNECTED,
    (CONNECTING, CLOSE): CLOSED,
    (CONNECTED, CLOSE): CLOSED,
}


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    session = Session(Node(), FakeTransport())
    yield session
    # The session was never connected for real: stop its stale timer by hand.
    session._stop_timers()


def test_states() -> None:
    assert [(state.name, state.value) for state in SessionState] == [
        ("CONNECTING", "connecting"),
        ("CONNECTED", "connected"),
        ("CLOSED", "closed"),
    ]


def test_table() -> None:
    assert_table(SESSION_TRANSITIONS, SessionState, ALLOWED)


@pytest.mark.parametrize(("state", "action"), list(itertools.product(SessionState, SessionAction)))
async def test_every_pair(session: Session, state: SessionState, action: SessionAction) -> None:
    session.state = state
    assert_step(state, action, ALLOWED, lambda: session._apply(action), lambda: session.state)


async def test_a_new_session_is_connecting(session: Session) -> None:
    assert session.state is CONNECTING
    assert session.connecting
    assert not session.closed
    assert repr(session) == f"<Session {session.client} user='' connecting>"


async def test_connected_twice_is_refused(session: Session) -> None:
    session.connected()
    assert session._stale_tick is None
    with pytest.raises(StateError, match=r"^can't complete the connect command when state is CONNECTED$"):
        session.connected()
    session.disconnect()
    assert session.closed


async def test_disconnect_twice_is_safe(session: Session) -> None:
    session.disconnect()
    session.disconnect()
    assert session.closed
