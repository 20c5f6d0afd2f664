"""session: the state table of a client session, walked pair by pair."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from wavecast.exceptions import LocalProtocolError
from wavecast.realtime import Node, Session
from wavecast.realtime.session import SESSION_TRANSITIONS, SessionState

from .helpers import FakeTransport

CONNECTING, CONNECTED, CLOSED = SessionState.CONNECTING, SessionState.CONNECTED, SessionState.CLOSED

# The table, written out again: a change to it must be deliberate.
ALLOWED = {
    (CONNECTING, CONNECTED),
    (CONNECTING, CLOSED),
    (CONNECTED, CLOSED),
}


@pytest.fixture
async def session() -> AsyncIterator[Session]:
    session = Session(Node(), FakeTransport())
    yield session
    # The session was never connected for real: stop its stale timer by hand.
    if session._stale_handle is not None:
        session._stale_handle.cancel()


def test_states() -> None:
    assert [(state.name, state.value) for state in SessionState] == [
        ("CONNECTING", "connecting"),
        ("CONNECTED", "connected"),
        ("CLOSED", "closed"),
    ]


def test_table() -> None:
    assert set(SESSION_TRANSITIONS) == set(SessionState)
    assert {(state, new) for state, row in SESSION_TRANSITIONS.items() for new in row} == ALLOWED


@pytest.mark.parametrize(("state", "new"), list(itertools.product(SessionState, SessionState)))
async def test_every_pair(session: Session, state: SessionState, new: SessionState) -> None:
    session.state = state
    if (state, new) in ALLOWED:
        session._move(new)
        assert session.state is new
    else:
        with pytest.raises(LocalProtocolError) as exc_info:
            session._move(new)
        assert str(exc_info.value) == f"can't move a session to {new.value} when it is {state.value}"
        assert session.state is state


async def test_a_new_session_is_connecting(session: Session) -> None:
    assert session.state is CONNECTING
    assert session.connecting
    assert not session.closed
    assert repr(session) == f"<Session {session.client} user='' connecting>"


async def test_connected_twice_is_refused(session: Session) -> None:
    session.connected()
    assert session._stale_handle is None
    with pytest.raises(LocalProtocolError, match=r"^can't move a session to connected when it is connected$"):
        session.connected()
    session.disconnect()
    assert session.closed


async def test_disconnect_twice_is_safe(session: Session) -> None:
    session.disconnect()
    session.disconnect()
    assert session.closed
