"""Streamed HTTP responses on a server connection: HTTP-streaming and server-sent events.

``process_request`` answers a request with a :class:`StreamingResponse` instead of a
:class:`~wavecast.protocol.events.Response`; the server sends its head and runs its handler
with an :class:`HTTPStream`, which writes the body piece by piece until the handler ends it
or the client goes away.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..protocol.events import Request, Response

if TYPE_CHECKING:
    from .server import ServerConnection

__all__ = ["HTTPStream", "StreamingResponse"]


class HTTPStream:
    """The body of a streamed response: write pieces, know when to wait, end it.

    Pieces leave at the end of the event loop's turn, batched with the connection's other
    writes, as WebSocket messages do.

    Attributes:
        request: the request this stream answers.
        on_writable: called when the client reads again after :attr:`writing_paused` was true.
        on_close: called once when the stream ends: ended here, or the client went away.
    """

    __slots__ = ("_connection", "on_close", "request")

    def __init__(self, connection: ServerConnection, request: Request) -> None:
        self._connection = connection
        self.request = request
        self.on_close: Callable[[], None] | None = None

    @property
    def on_writable(self) -> Callable[[], None] | None:
        return self._connection.on_writable

    @on_writable.setter
    def on_writable(self, callback: Callable[[], None] | None) -> None:
        self._connection.on_writable = callback

    @property
    def writing_paused(self) -> bool:
        """Whether the connection's buffer is above its write limit: the client isn't reading."""
        return self._connection.writing_paused

    @property
    def open(self) -> bool:
        """Whether the body still takes pieces: not ended, and the client still there."""
        return self._connection.protocol.streaming and not self._connection._lost

    def write(self, data: bytes) -> None:
        """Queue a piece of the body; it leaves at the end of this turn of the loop.

        This doesn't apply backpressure: callers check :attr:`writing_paused` first.
        """
        connection = self._connection
        if not self.open:
            return
        connection.protocol.send_body(data)
        connection._unflushed += len(data)
        if not connection._dirty:
            connection._dirty = True
            connection._batcher.add(connection)
        if connection._unflushed > connection.write_limit:
            # Let the transport see the data, so that it pauses writing if the client is slow.
            connection._flush()

    def end(self) -> None:
        """End the body, after what was written; the connection closes. Safe to call twice."""
        connection = self._connection
        if self.open:
            connection.protocol.end_stream()
            connection._flush()
            connection._check_close_expected()
        self._closed()

    def _closed(self) -> None:
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()


@dataclasses.dataclass(frozen=True, slots=True)
class StreamingResponse:
    """An answer whose body is written over time, for ``process_request`` to return.

    Attributes:
        head: the status and headers; its body is ignored. ``Transfer-Encoding: chunked``
            is added for HTTP/1.1 clients.
        handler: runs with the :class:`HTTPStream` once the head is sent; the stream ends
            when it returns, if it hasn't already.
    """

    head: Response
    handler: Callable[[HTTPStream], Awaitable[None]]
