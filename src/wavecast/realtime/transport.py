"""The seam between a client session and the connection it talks through."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..codes import Disconnect
from ..protocol.prepared import PreparedMessage

if TYPE_CHECKING:
    from .session import Session

__all__ = ["Transport"]


class Transport(Protocol):
    """What a session needs from its connection: write, know when to wait, and close."""

    #: The transport's name, reported to hooks: ``"websocket"``.
    name: str
    #: The session the transport serves, set by the session: the transport calls its
    #: :meth:`~wavecast.realtime.session.Session.writable_again` when it becomes writable
    #: again after :meth:`writable` was false. (A session's bound method kept by each
    #: transport would cost every client 64 bytes.)
    session: Session | None

    def writable(self) -> bool:
        """Tell whether a message written now leaves soon, or would wait behind others."""
        ...

    def write(self, message: PreparedMessage) -> None:
        """Send a message; it may wait in the transport's buffer."""

    def close(self, disconnect: Disconnect) -> None:
        """Close the connection, telling the client why."""
