"""The HTTP side of HTTP-streaming and SSE: the stream endpoints and ``POST /emulation``.

Independent of the server that carries them, as :class:`~wavecast.server.app.App` is:
``wavecast serve`` streams the body with its own connection, an ASGI server with
``more_body``. Requests follow Centrifugo's handlers (``handler_http_stream.go``,
``handler_sse.go``, ``emulation.go`` in centrifugal/centrifuge):

| request | answer |
| --- | --- |
| ``POST /connection/http_stream``, body: commands | 200, a stream of replies (1) |
| ``GET /connection/sse?cf_connect=<commands>`` | 200, ``text/event-stream``; 400 without ``cf_connect`` |
| ``POST /emulation``, ``{"session", "node", "data"}`` | 204 once the commands ran (2) |
| ``OPTIONS`` any of them | 204, CORS preflight (``Access-Control-Max-Age: 300``) |
| another method | 405 |
| a body over ``client.message_size_limit`` | 413 |
| an ``Origin`` that ``server.allowed_origins`` refuses | 403 |

(1) in JSON, or in Protobuf with ``Content-Type: application/octet-stream``.
(2) 404 for a session that ended or never was, or a node that isn't live; 400 for a malformed
body; 500 when the node that holds the session doesn't answer in ``survey_timeout`` or the
engine is away; 503 past ``MAX_FORWARDS`` waiting forwards.

An allowed ``Origin`` gets CORS headers (``Access-Control-Allow-Origin`` naming it, with
credentials), as Centrifugo's CORS middleware gives them.
"""

from __future__ import annotations

import dataclasses
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping

from ..protocol.events import Request
from ..protocol.handshake import origin_allowed
from ..realtime.codec import Codec, JSONCodec, ProtobufCodec
from ..realtime.emulation import (
    HTTP_STREAM_PATH,
    SSE_PATH,
    ByteStream,
    Delivery,
    decode_emulation,
    route,
    serve_stream,
)
from ..realtime.node import Node
from .config import Config

__all__ = ["StreamStart", "Streams"]

logger = logging.getLogger("wavecast.server")

#: On every stream, as Centrifugo sends them: nothing between here and the client may buffer
#: or cache the body (``X-Accel-Buffering`` is nginx's).
_STREAM_HEADERS = (
    ("X-Accel-Buffering", "no"),
    ("Cache-Control", "private, no-cache, no-store, must-revalidate, max-age=0"),
    ("Pragma", "no-cache"),
    ("Expire", "0"),
)


@dataclasses.dataclass(frozen=True, slots=True)
class StreamStart:
    """The answer that opens a stream: a 200 with these headers, then ``run`` writes the body.

    Attributes:
        headers: the response headers, Content-Type included.
        run: serves the client on the stream; the stream ends when it returns.
    """

    headers: tuple[tuple[str, str], ...]
    run: Callable[[ByteStream], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    """A plain answer instead of a stream."""

    status: int
    text: str = ""
    headers: tuple[tuple[str, str], ...] = ()

    @property
    def body(self) -> bytes:
        return f"{self.text}\n".encode() if self.text else b""


class Streams:
    """The stream endpoints and the emulation endpoint of one node, as the configuration enables them."""

    def __init__(self, node: Node, *, http_stream: bool = True, sse: bool = True) -> None:
        self.node = node
        #: The stream endpoints served, to the transport each serves.
        self.paths: dict[str, str] = {}
        if http_stream:
            self.paths[HTTP_STREAM_PATH] = "http_stream"
        if sse:
            self.paths[SSE_PATH] = "sse"

    @classmethod
    def from_config(cls, config: Config, node: Node) -> Streams:
        return cls(node, http_stream=config.http_stream.enabled, sse=config.sse.enabled)

    @property
    def enabled(self) -> bool:
        """Whether any stream endpoint is served, and so ``/emulation``."""
        return bool(self.paths)

    def _cors(self, headers: Mapping[str, str]) -> tuple[tuple[str, str], ...] | None:
        """The CORS headers for the request's origin; ``None`` if the origin is refused."""
        origin = headers.get("origin")
        if not origin_allowed(origin, headers.get("host"), self.node.config.allowed_origins):
            return None
        if origin is None:
            return ()
        cors = [("Access-Control-Allow-Origin", origin), ("Access-Control-Allow-Credentials", "true")]
        requested = headers.get("access-control-request-headers", "")
        if requested and requested != "null":
            cors.append(("Access-Control-Allow-Headers", requested))
        return tuple(cors)

    def _too_big(self, body: bytes | str) -> bool:
        limit = self.node.config.client_message_size_limit
        return limit is not None and len(body) > limit

    def open(
        self,
        method: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        body: bytes,
        request: Request | None = None,
    ) -> StreamStart | Refusal:
        """Answer a request to a stream endpoint (``path`` in :attr:`paths`); headers are lowercase."""
        name = self.paths[path]
        cors = self._cors(headers)
        if cors is None:
            return Refusal(403, f"Forbidden: origin {headers.get('origin')!r} isn't allowed")
        if method == "OPTIONS":
            return Refusal(204, headers=(*cors, *_PREFLIGHT))
        codec: Codec = JSONCodec
        first: str | bytes
        if name == "sse" and method == "GET":
            first = urllib.parse.parse_qs(query).get("cf_connect", [""])[0]
            if not first:
                return Refusal(400, "Bad Request: no cf_connect", cors)
        elif method == "POST":
            if headers.get("content-type", "").partition(";")[0].strip().lower() == "application/octet-stream":
                if name == "sse":
                    return Refusal(400, "Bad Request: SSE carries JSON only", cors)
                codec = ProtobufCodec
            first = body
            if not codec.binary:
                try:
                    first = body.decode()
                except UnicodeDecodeError:
                    return Refusal(400, "Bad Request: the commands aren't UTF-8", cors)
        else:
            allow = "GET, POST, OPTIONS" if name == "sse" else "POST, OPTIONS"
            return Refusal(405, "Method Not Allowed", (*cors, ("Allow", allow)))
        if self._too_big(first):
            return Refusal(413, "Payload Too Large", cors)
        if not self.node.started:
            return Refusal(503, "Service Unavailable: the server is stopping", cors)
        content_type = (
            "text/event-stream; charset=utf-8"
            if name == "sse"
            else ("application/octet-stream" if codec.binary else "application/json")
        )
        node = self.node

        async def run(stream: ByteStream) -> None:
            if name == "sse":
                # Centrifugo's first bytes: browsers fire EventSource's open on the head, some
                # proxies pass nothing on until the body starts.
                stream.write(b"\r\n")
            await serve_stream(node, stream, name, codec, first, request)

        return StreamStart((("Content-Type", content_type), *_STREAM_HEADERS, *cors), run)

    async def emulation(self, method: str, headers: Mapping[str, str], body: bytes) -> Refusal:
        """Answer ``/emulation``: hand the POSTed commands to their session."""
        cors = self._cors(headers)
        if cors is None:
            return Refusal(403, f"Forbidden: origin {headers.get('origin')!r} isn't allowed")
        if method == "OPTIONS":
            return Refusal(204, headers=(*cors, *_PREFLIGHT))
        if method != "POST":
            return Refusal(405, "Method Not Allowed", (*cors, ("Allow", "POST, OPTIONS")))
        if self._too_big(body):
            return Refusal(413, "Payload Too Large", cors)
        binary = headers.get("content-type", "").partition(";")[0].strip().lower() == "application/octet-stream"
        decoded = decode_emulation(ProtobufCodec if binary else JSONCodec, body)
        if decoded is None:
            return Refusal(400, "Bad Request: malformed emulation request", cors)
        session, owner, data = decoded
        status, text = _OUTCOMES[await route(self.node, owner, session, data)]
        return Refusal(status, text, cors)


_PREFLIGHT = (("Access-Control-Max-Age", "300"), ("Access-Control-Allow-Methods", "POST, OPTIONS"))
#: The answer to each outcome: Centrifugo's statuses (404 for a node it doesn't know, 500 when
#: the forward fails), and 404 for a session that ended where Centrifugo answers 204.
_OUTCOMES = {
    Delivery.DELIVERED: (204, ""),
    Delivery.NO_SESSION: (404, "Not Found: no such session, or it ended"),
    Delivery.BAD_REQUEST: (400, "Bad Request: the data isn't in the session's form (JSON text or Protobuf bytes)"),
    Delivery.NO_NODE: (404, "Not Found: no live node has that id (it stopped, or the session is gone)"),
    Delivery.TIMEOUT: (500, "Internal Server Error: the node that holds the session didn't answer"),
    Delivery.UNSENT: (500, "Internal Server Error: the engine is unavailable"),
    Delivery.BUSY: (503, "Service Unavailable: too many emulation requests wait for other nodes"),
}
