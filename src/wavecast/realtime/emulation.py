"""Clients over HTTP-streaming and SSE, with Centrifugo's bidirectional emulation.

Where WebSocket is blocked, centrifuge-js opens a stream instead (``POST
/connection/http_stream`` with its first commands, the connect, as the body; or ``GET
/connection/sse?cf_connect=<commands>``). The stream carries the replies and pushes. The
connect reply names a ``session`` and a ``node``, and the client sends every later command
as ``POST /emulation`` with ``{"session", "node", "data"}``, which :func:`deliver` hands to
the session that owns the stream. :func:`deliver` is the one way in for those commands: the
HTTP endpoint calls :func:`route`, which calls it for the sessions of this node, and sends a
POST that reached another node through the engine's control channel to the node that owns
the session, which calls it there.

The framing, as centrifuge-js reads it (docs/protocol.md, "HTTP-streaming and SSE"):

* ``http_stream`` in JSON: one reply per line, ``\\n`` after each;
* ``http_stream`` in Protobuf: the replies, each prefixed with its varint length, as in a
  WebSocket binary message;
* ``sse``: JSON only, one event per reply, ``data: <reply>\\n\\n``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import msgspec

from ..codes import Disconnect
from ..protocol.events import Request
from ..protocol.prepared import PreparedMessage
from .codec import Codec
from .codec.schema import DisconnectMsg, Push, Reply
from .session import Session

if TYPE_CHECKING:
    from .node import Node

__all__ = [
    "EMULATION_PATH",
    "HTTP_STREAM_PATH",
    "SSE_PATH",
    "ByteStream",
    "Delivery",
    "EmulationSessions",
    "StreamTransport",
    "deliver",
    "deliver_forwarded",
    "route",
    "serve_stream",
    "sse_event",
]

logger = logging.getLogger("wavecast.realtime")

#: Where centrifuge-js's transports connect by default, as Centrifugo serves them.
HTTP_STREAM_PATH = "/connection/http_stream"
SSE_PATH = "/connection/sse"
#: Where centrifuge-js POSTs the commands of an emulated connection (its ``emulationEndpoint``).
EMULATION_PATH = "/emulation"


class ByteStream(Protocol):
    """What a stream transport needs from a streamed HTTP response: wavecast's own
    (:class:`~wavecast.asyncio.streaming.HTTPStream`) or an ASGI server's."""

    #: Called when the client reads again after :attr:`writing_paused` was true.
    on_writable: Callable[[], None] | None
    #: Called once when the stream ends: ended here, or the client went away.
    on_close: Callable[[], None] | None

    @property
    def writing_paused(self) -> bool:
        """Whether the client doesn't read what was written."""
        ...

    @property
    def open(self) -> bool:
        """Whether the body still takes pieces."""
        ...

    def write(self, data: bytes) -> None:
        """Queue a piece of the body."""

    def end(self) -> None:
        """End the body after what was written; safe to call twice."""


def sse_event(payload: bytes) -> bytes:
    """Frame one message as a server-sent event; each line of a batch gets its ``data:`` field,
    and the client's EventSource joins them back with ``\\n`` (HTML, "server-sent events")."""
    if b"\n" not in payload:
        return b"data: " + payload + b"\n\n"
    return b"".join(b"data: " + line + b"\n" for line in payload.split(b"\n")) + b"\n"


class StreamTransport:
    """A :class:`~wavecast.realtime.transport.Transport` over a streamed HTTP response.

    Args:
        stream: the response body.
        name: ``"http_stream"`` or ``"sse"``, which frame messages as their clients read them.
        codec: the session's codec, to encode the disconnect push on close.
    """

    __slots__ = ("_frame", "codec", "name", "session", "stream")

    def __init__(self, stream: ByteStream, name: str, codec: Codec) -> None:
        self.stream = stream
        self.name = name
        self.codec = codec
        self.session: Session | None = None
        self._frame: Callable[[bytes], bytes] = sse_event if name == "sse" else (_as_is if codec.binary else _line)
        stream.on_writable = self._writable_again

    def _writable_again(self) -> None:
        if self.session is not None:
            self.session.writable_again()

    def writable(self) -> bool:
        return not self.stream.writing_paused

    def write(self, message: PreparedMessage) -> None:
        self.stream.write(self._frame(message.payload))

    def close(self, disconnect: Disconnect) -> None:
        """End the stream after a disconnect push: a stream has no close frame to carry the
        code, so the client learns it from the push, as Centrifugo sends it."""
        stream = self.stream
        if stream.open:
            message = DisconnectMsg(code=disconnect.code, reason=disconnect.reason, reconnect=disconnect.reconnect)
            push = Push(disconnect=message)
            stream.write(self._frame(self.codec.encode_reply(Reply(push=push))))
            stream.end()


def _as_is(payload: bytes) -> bytes:
    return payload


def _line(payload: bytes) -> bytes:
    return payload + b"\n"


class _Client:
    """A session on a stream, and the order its commands run in."""

    __slots__ = ("closed", "lock", "session")

    def __init__(self, session: Session) -> None:
        self.session = session
        # Commands run one message after the other, as a WebSocket's do: the connect in the
        # stream's request first, then each POST in the order it arrived (the lock is fair).
        self.lock = asyncio.Lock()
        self.closed = asyncio.Event()


class EmulationSessions:
    """This node's sessions on streams, by the session id their emulation requests name.

    A session is here from the time its stream opens until the stream ends, so the table is
    as large as the number of open streams, which the server's connection limits bound.
    """

    def __init__(self) -> None:
        self._clients: dict[str, _Client] = {}

    def __len__(self) -> int:
        return len(self._clients)

    def _add(self, client: _Client) -> None:
        self._clients[client.session.emulation] = client

    def _remove(self, client: _Client) -> None:
        self._clients.pop(client.session.emulation, None)

    def _get(self, session_id: str) -> _Client | None:
        return self._clients.get(session_id)


async def serve_stream(
    node: Node, stream: ByteStream, name: str, codec: Codec, first: str | bytes, request: Request | None = None
) -> None:
    """Serve one client on a stream: its first commands, then those its POSTs bring, until
    the stream or the session ends.

    Args:
        node: the node the client connects to.
        stream: the response body that carries the replies and pushes.
        name: ``"http_stream"`` or ``"sse"``.
        codec: the form of the protocol, fixed by the request.
        first: the commands of the request that opened the stream (the connect), in the
            codec's form: text for JSON, bytes for Protobuf.
        request: the HTTP request, which hooks may read.
    """
    transport = StreamTransport(stream, name, codec)
    session = Session(node, transport, request=request, codec=codec, emulation=str(uuid.uuid4()))
    client = _Client(session)
    stream.on_close = client.closed.set
    sessions = node.emulation
    sessions._add(client)
    try:
        async with client.lock:
            await session.handle_message(first)
        if not session.closed and stream.open:
            await client.closed.wait()
    except Exception as exc:
        session.fail(exc)
    finally:
        sessions._remove(client)
        session.closed_by_transport()
        stream.end()


class Delivery(enum.Enum):
    """What became of an emulation request."""

    #: The session ran the commands.
    DELIVERED = "delivered"
    #: No session of that id on its node: it ended, or never was.
    NO_SESSION = "no_session"
    #: The data isn't what the session's codec reads.
    BAD_REQUEST = "bad_request"
    #: The request names a node that isn't live (it stopped, or never was).
    NO_NODE = "no_node"
    #: The owner didn't answer within ``survey_timeout``.
    TIMEOUT = "timeout"
    #: The engine didn't take the forward (Redis is away).
    UNSENT = "unsent"
    #: Too many forwards wait or run already (``cluster.MAX_FORWARDS``).
    BUSY = "busy"


async def deliver(node: Node, session_id: str, data: str | bytes) -> Delivery:
    """Hand the commands of an emulation request to the session ``session_id`` of this node.

    ``data`` is one message of the session's codec: the JSON commands' text, or the
    length-delimited Protobuf commands. The session handles it exactly as a WebSocket
    message: the same commands, rate limits and disconnects. This returns once the commands
    ran (RPCs run beside later commands, as on WebSocket).
    """
    client = node.emulation._get(session_id)
    if client is None or client.session.closed:
        return Delivery.NO_SESSION
    session = client.session
    if isinstance(data, str) is session.codec.binary:
        return Delivery.BAD_REQUEST
    async with client.lock:
        await session.handle_message(data)
    return Delivery.DELIVERED


async def route(node: Node, owner: str, session_id: str, data: str | bytes) -> Delivery:
    """Hand an emulation request to its session, on this node or on ``owner``, the node that
    the request names (the ``node`` of the connect reply).

    A session of this node takes it here; another node's gets it over the engine's control
    channel (:meth:`~.cluster.Cluster.forward`), as Centrifugo routes it, and runs it with
    :func:`deliver` there.
    """
    if owner in ("", node.uid) or node.emulation._get(session_id) is not None:
        outcome = await deliver(node, session_id, data)
        node.stats.emulation[outcome.value] += 1
    else:
        outcome = Delivery(await node.cluster.forward(owner, session_id, data))
        node.stats.emulation["forwarded_" + outcome.value] += 1
    return outcome


async def deliver_forwarded(node: Node, session_id: str, data: str | bytes) -> str:
    """:func:`deliver` for a request that another node forwarded: the
    :data:`~.cluster.Emulate` callback of the node's cluster."""
    return (await deliver(node, session_id, data)).value


def decode_emulation(codec: Codec, body: bytes) -> tuple[str, str, str | bytes] | None:
    """Return the session id, node and data of an emulation request's body, or ``None`` if
    it is malformed; ``codec`` is the one its Content-Type names."""
    try:
        request = codec.decode_emulation(body)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    data: str | bytes = request.data
    return request.session, request.node, data
