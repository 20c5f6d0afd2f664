"""The seam between a client session and the connection it talks through."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..codes import Disconnect
from ..protocol.prepared import PreparedMessage

__all__ = ["Transport"]


class Transport(Protocol):
    """What a session needs from its connection: write, know when to wait, and close."""

    #: The transport's name, reported to hooks: ``"websocket"``.
    name: str
    #: Called when the transport becomes writable again after :meth:`writable` was false.
    on_writable: Callable[[], None] | None

    def writable(self) -> bool:
        """Tell whether a message written now leaves soon, or would wait behind others."""
        ...

    def write(self, message: PreparedMessage) -> None:
        """Send a message; it may wait in the transport's buffer."""

    def close(self, disconnect: Disconnect) -> None:
        """Close the connection, telling the client why."""
