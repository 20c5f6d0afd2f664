"""Clients of a Node over WebSocket: the transport adapter and the connection handler."""

from __future__ import annotations

import asyncio
import collections
import functools
from typing import TYPE_CHECKING, Any, cast

from ..asyncio.server import ServerConnection
from ..codes import Disconnect
from ..protocol.prepared import PreparedMessage
from ..protocol.state import OPEN
from .codec import negotiate_codec, select_subprotocol
from .session import Session

if TYPE_CHECKING:
    from .node import Node

__all__ = ["WEBSOCKET_PATH", "WebSocketTransport", "handle_websocket", "websocket_server_options"]


class WebSocketTransport:
    """A :class:`~wavecast.realtime.transport.Transport` over a wavecast server connection.

    It is also the connection's :class:`~wavecast.asyncio.MessageSink`: a message that
    arrives while the client is idle starts a task that handles it, then any that arrived
    meanwhile (the backlog), one after the other, and ends. So commands run in order, each
    in a task as under a handler's ``async for``, while an idle client holds no task. Reading
    pauses while ``max_queue`` messages wait in the backlog.
    """

    name = "websocket"

    __slots__ = ("_backlog", "_worker", "connection", "session")

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        # The transport itself, callable, rather than a bound method that each client would hold.
        connection.on_writable = self
        self.session: Session | None = None
        # The task handling messages, None while the client is idle. It counts among the
        # server's handlers, which wait_closed() waits for (and cancels past its timeout).
        self._worker: asyncio.Task[None] | None = None
        self._backlog: collections.deque[str | bytes] | None = None

    def __call__(self) -> None:
        """The connection's ``on_writable``: the client reads again."""
        if self.session is not None:
            self.session.writable_again()

    def writable(self) -> bool:
        return not self.connection.writing_paused

    def write(self, message: PreparedMessage) -> None:
        self.connection.write_prepared(message)

    def close(self, disconnect: Disconnect) -> None:
        if self.connection.protocol.state is OPEN:
            self.connection.close_nowait(disconnect.code, disconnect.reason)

    # --- MessageSink -----------------------------------------------------------------------

    def message_received(self, message: str | bytes) -> None:
        if self._worker is not None:
            backlog = self._backlog
            if backlog is None:
                backlog = self._backlog = collections.deque()
            backlog.append(message)
            max_queue = self.connection.max_queue
            if max_queue is not None and len(backlog) >= max_queue:
                self.connection.pause_reading()
            return
        self._worker = worker = asyncio.get_running_loop().create_task(self._work(message))
        self.connection.server._handlers.add(worker)

    def connection_closed(self) -> None:
        self.connection.on_writable = None
        if self.session is not None:
            self.session.closed_by_transport()

    async def _work(self, message: str | bytes) -> None:
        """Handle ``message``, then the backlog, one message at a time."""
        session = self.session
        assert session is not None
        try:
            await session.handle_message(message)
            while (backlog := self._backlog) and not session.closed:
                message = backlog.popleft()
                if len(backlog) <= (self.connection.max_queue or 0) // 4:
                    self.connection.resume_reading()
                await session.handle_message(message)
        except Exception as exc:
            session.fail(exc)
        finally:
            self.connection.server._handlers.discard(cast("asyncio.Task[None]", self._worker))
            self._worker = None
            self._backlog = None
            self.connection.resume_reading()
        self._closed_session()

    def _closed_session(self) -> None:
        # The session closed itself without a close frame to send (a shutdown): end the
        # connection as a handler that returned would.
        if self.session is not None and self.session.closed and self.connection.protocol.state is OPEN:
            self.connection.close_nowait()


def handle_websocket(node: Node, connection: ServerConnection) -> None:
    """Serve one client: a new session takes its messages until the connection closes.

    The session speaks the form of the protocol the handshake chose (see
    :func:`~wavecast.realtime.codec.negotiate_codec`). A plain function, which the server
    calls from the event loop as the handshake completes, with no task (see
    :func:`wavecast.serve`): it returns at once, the connection delivers the messages to the
    session (:meth:`~wavecast.asyncio.Connection.deliver_to`), and the server leaves the
    connection open.
    """
    request = connection.request
    codec = negotiate_codec(connection.subprotocol, request.query if request is not None else "")
    transport = WebSocketTransport(connection)
    # The session makes itself the transport's session, which keeps it.
    Session(node, transport, request=request, codec=codec)
    # The session keeps the request while hooks may read it (see Session.connected).
    connection.forget_handshake()
    connection.deliver_to(transport)


#: Where Centrifugo's SDKs connect by default.
WEBSOCKET_PATH = "/connection/websocket"


def websocket_server_options(node: Node) -> dict[str, Any]:
    """The :func:`wavecast.serve` arguments that serve ``node``'s clients.

    The real-time protocol has its own pings, so WebSocket keepalive is off; a message is
    at most ``client_message_size_limit`` bytes; the ``centrifuge-json`` and
    ``centrifuge-protobuf`` subprotocols are answered when offered.
    """
    from ..protocol.limits import Limits

    size = node.config.client_message_size_limit
    # Off means off: a message of any size, in one frame too.
    limits = Limits(max_message_size=size) if size is not None else Limits(max_message_size=None, max_frame_size=None)
    return {
        # Called as each client's handshake completes, with no task (see serve()).
        "handler": functools.partial(handle_websocket, node),
        "limits": limits,
        "ping_interval": None,
        "origins": node.config.allowed_origins,
        "select_subprotocol": select_subprotocol,
    }
