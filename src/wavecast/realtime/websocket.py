"""Clients of a Node over WebSocket: the transport adapter and the connection handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..asyncio.server import ServerConnection
from ..codes import Disconnect
from ..exceptions import ConnectionClosed
from ..protocol.prepared import PreparedMessage
from ..protocol.state import OPEN
from .codec import negotiate_codec, select_subprotocol
from .session import Session

if TYPE_CHECKING:
    from .node import Node

__all__ = ["WEBSOCKET_PATH", "WebSocketTransport", "handle_websocket", "websocket_server_options"]


class WebSocketTransport:
    """A :class:`~wavecast.realtime.transport.Transport` over a wavecast server connection."""

    name = "websocket"

    __slots__ = ("connection", "on_writable")

    def __init__(self, connection: ServerConnection) -> None:
        self.connection = connection
        self.on_writable: Callable[[], None] | None = None
        connection.on_writable = self._writable_again

    def _writable_again(self) -> None:
        if self.on_writable is not None:
            self.on_writable()

    def writable(self) -> bool:
        return not self.connection.writing_paused

    def write(self, message: PreparedMessage) -> None:
        self.connection.write_prepared(message)

    def close(self, disconnect: Disconnect) -> None:
        if self.connection.protocol.state is OPEN:
            self.connection.close_nowait(disconnect.code, disconnect.reason)


async def handle_websocket(node: Node, connection: ServerConnection) -> None:
    """Serve one client: feed its messages to a new session until the connection closes.

    The session speaks the form of the protocol the handshake chose (see
    :func:`~wavecast.realtime.codec.negotiate_codec`).
    """
    request = connection.request
    codec = negotiate_codec(connection.subprotocol, request.query if request is not None else "")
    session = Session(node, WebSocketTransport(connection), request=request, codec=codec)
    try:
        async for message in connection:
            await session.handle_message(message)
            if session.closed:
                break
    except ConnectionClosed:
        pass
    except Exception as exc:
        session.fail(exc)
    finally:
        session.closed_by_transport()
        connection.on_writable = None


#: Where Centrifugo's SDKs connect by default.
WEBSOCKET_PATH = "/connection/websocket"


def websocket_server_options(node: Node) -> dict[str, Any]:
    """The :func:`wavecast.serve` arguments that serve ``node``'s clients.

    The real-time protocol has its own pings, so WebSocket keepalive is off; a message is
    at most ``client_message_size_limit`` bytes; the ``centrifuge-json`` and
    ``centrifuge-protobuf`` subprotocols are answered when offered.
    """
    from ..protocol.limits import Limits

    async def handler(connection: ServerConnection) -> None:
        await handle_websocket(node, connection)

    size = node.config.client_message_size_limit
    # Off means off: a message of any size, in one frame too.
    limits = Limits(max_message_size=size) if size is not None else Limits(max_message_size=None, max_frame_size=None)
    return {
        "handler": handler,
        "limits": limits,
        "ping_interval": None,
        "origins": node.config.allowed_origins,
        "select_subprotocol": select_subprotocol,
    }
