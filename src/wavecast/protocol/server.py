"""The server side: answer plain HTTP requests and accept or reject upgrades."""

from __future__ import annotations

import http
import logging
from collections.abc import Callable, Sequence

from ..exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidOrigin,
    InvalidUpgrade,
    LocalProtocolError,
    NegotiationError,
)
from .connection import SERVER, Protocol
from .events import Request, Response
from .extensions import Extension, ExtensionParameter, ServerExtensionFactory
from .handshake import accept_key, build_extensions, check_key, origin_allowed, parse_extensions, parse_tokens
from .headers import Headers
from .http import RequestParser
from .limits import DEFAULT_LIMITS, Limits
from .state import CONNECTING, OPEN, Action, next_state

__all__ = ["HandshakePolicy", "ServerProtocol", "SubprotocolSelector"]

# What a missing header's values are: shared, and never changed.
_NONE: list[str] = []

#: Picks a subprotocol among the client's offers, in the client's order; ``None`` for none.
SubprotocolSelector = Callable[[Sequence[str]], str | None]


class HandshakePolicy:
    """What a server accepts in an opening handshake: the arguments of :class:`ServerProtocol`
    of the same names. A server's connections share one, which costs each nothing.
    """

    __slots__ = ("extensions", "origins", "select_subprotocol", "subprotocols")

    def __init__(
        self,
        *,
        origins: Sequence[str] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
    ) -> None:
        self.origins = origins
        self.subprotocols: tuple[str, ...] = tuple(subprotocols) if subprotocols else ()
        self.select_subprotocol = select_subprotocol
        self.extensions = tuple(extensions)


_DEFAULT_POLICY = HandshakePolicy()


class ServerProtocol(Protocol):
    """The server side of a WebSocket connection, from the first request line.

    A request arrives as a :class:`~wavecast.protocol.events.Request` event. Answer it with
    :meth:`send_response`: the :class:`Response` that :meth:`accept` returns upgrades the
    connection (or rejects a bad handshake), and :meth:`reject` builds a plain answer. A
    plain answer to a keep-alive request leaves the connection ready for the next request.

    Args:
        origins: the allowed Origin values (see
            :func:`~wavecast.protocol.handshake.origin_allowed`); ``None`` allows the
            server's own origin and clients that send none.
        subprotocols: the subprotocols this server speaks, in order of preference.
        select_subprotocol: picks the subprotocol instead of the order of preference.
        extensions: the extensions this server can negotiate.
        policy: the four arguments above as one :class:`HandshakePolicy`, which a server
            builds once for its connections; not with them.
        limits: the limits to enforce on clients.
    """

    __slots__ = (
        "_chunked",
        "_http",
        "handshake_exc",
        "policy",
        "request",
        "subprotocol",
    )

    def __init__(
        self,
        *,
        origins: Sequence[str] | None = None,
        subprotocols: Sequence[str] | None = None,
        select_subprotocol: SubprotocolSelector | None = None,
        extensions: Sequence[ServerExtensionFactory] = (),
        policy: HandshakePolicy | None = None,
        limits: Limits = DEFAULT_LIMITS,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        super().__init__(SERVER, limits=limits, state=CONNECTING, logger=logger)
        if policy is None:
            if origins is None and not subprotocols and select_subprotocol is None and not extensions:
                policy = _DEFAULT_POLICY
            else:
                policy = HandshakePolicy(
                    origins=origins,
                    subprotocols=subprotocols,
                    select_subprotocol=select_subprotocol,
                    extensions=extensions,
                )
        elif origins is not None or subprotocols or select_subprotocol is not None or extensions:
            raise TypeError("pass the handshake's settings as a policy or as arguments, not both")
        self.policy = policy
        #: The last request received.
        self.request: Request | None = None
        #: The subprotocol agreed in the handshake, if any.
        self.subprotocol: str | None = None
        #: Why the handshake failed, if it did.
        self.handshake_exc: InvalidHandshake | None = None
        self._http: RequestParser | None = RequestParser(limits)
        # While a streamed response is open: whether its body goes in chunks; else None.
        self._chunked: bool | None = None

    def _receive_handshake(self, data: bytes) -> bytes:
        if self._http is None:
            # A request is waiting for its response; keep what follows it.
            self._leftover = data
            return b""
        try:
            result = self._http.feed(data)
        except InvalidHandshake as exc:
            self.handshake_exc = exc
            self.send_response(self.reject(exc.status, f"{exc}\n", keep_alive=False))
            return b""
        if result is None:
            return b""
        request, tail = result
        self.state = next_state(self.state, Action.RECEIVE_REQUEST)
        self.request = request
        self._http = None
        self._leftover = tail
        self._event(request)
        return b""

    def accept(self, request: Request) -> Response:
        """Validate a handshake request and return the response to send.

        Returns ``101 Switching Protocols`` when the request is valid; otherwise a
        rejection whose status says why (400, 403, 405, 426 or 505), and
        :attr:`handshake_exc` holds the error.
        """
        try:
            headers = self._check_request(request)
        except InvalidHandshake as exc:
            self.handshake_exc = exc
            response = self.reject(exc.status, f"Failed to open a WebSocket connection: {exc}.\n", keep_alive=False)
            if exc.status == http.HTTPStatus.UPGRADE_REQUIRED:
                response.headers["Upgrade"] = "websocket"
                response.headers["Sec-WebSocket-Version"] = "13"
            elif exc.status == http.HTTPStatus.METHOD_NOT_ALLOWED:
                response.headers["Allow"] = "GET"
            return response
        return Response(status_code=101, reason_phrase="Switching Protocols", headers=headers)

    def _check_request(self, request: Request) -> Headers:
        """Check the request against RFC 6455 section 4.2.1 and return the 101's headers."""
        if request.method != "GET":
            raise InvalidHandshake(f"method {request.method} not allowed, expected GET", status=405)
        if request.http_version != "1.1":
            raise InvalidHandshake(f"HTTP/{request.http_version} not supported, expected HTTP/1.1", status=505)
        headers = request.headers
        # One index lookup per header: get_all() would copy each list of values.
        index = headers._lookup()
        hosts = index.get("host")
        if not hosts:
            raise InvalidHeader("Host")
        host = hosts[0]

        # A single plain value is what every client sends, and a token: parse_tokens would
        # return it alone, lowercased.
        upgrade = index.get("upgrade", _NONE)
        if not (len(upgrade) == 1 and upgrade[0].lower() == "websocket") and "websocket" not in parse_tokens(
            upgrade, "Upgrade"
        ):
            raise InvalidUpgrade("Upgrade", ", ".join(upgrade) or None)
        connection = index.get("connection", _NONE)
        if not (len(connection) == 1 and connection[0].lower() == "upgrade") and "upgrade" not in parse_tokens(
            connection, "Connection"
        ):
            raise InvalidUpgrade("Connection", ", ".join(connection) or None)

        keys = index.get("sec-websocket-key", _NONE)
        if len(keys) != 1:
            raise InvalidHeader("Sec-WebSocket-Key", ", ".join(keys) if keys else None)
        key = keys[0]
        check_key(key)
        versions = index.get("sec-websocket-version", _NONE)
        if versions != ["13"]:
            raise InvalidUpgrade("Sec-WebSocket-Version", ", ".join(versions) if versions else None)

        origins = index.get("origin", _NONE)
        if len(origins) > 1:
            raise InvalidHeader("Origin", ", ".join(origins))
        origin = origins[0] if origins else None
        # A malformed Origin gets the same 403 as one that isn't allowed, not a 400: no
        # browser sends one, it names no origin that could be allowed, and a prober learns
        # nothing about the policy from telling the two apart.
        if not origin_allowed(origin, host, self.policy.origins):
            raise InvalidOrigin(origin)

        # Base64 and fixed names: nothing for Headers.add to check.
        response_headers = Headers._from_flat(
            ["Upgrade", "websocket", "Connection", "Upgrade", "Sec-WebSocket-Accept", accept_key(key)]
        )
        extensions_header = self._negotiate_extensions(index.get("sec-websocket-extensions", _NONE))
        if extensions_header is not None:
            response_headers["Sec-WebSocket-Extensions"] = extensions_header
        subprotocol = self._negotiate_subprotocol(index.get("sec-websocket-protocol", _NONE))
        if subprotocol is not None:
            response_headers["Sec-WebSocket-Protocol"] = subprotocol
        self.subprotocol = subprotocol
        return response_headers

    def _negotiate_extensions(self, values: list[str]) -> str | None:
        """Accept the client's offers that a factory takes, in the client's order."""
        if not values or not self.policy.extensions:
            return None
        accepted: list[Extension] = []
        response: list[tuple[str, list[ExtensionParameter]]] = []
        for name, params in parse_extensions(values):
            for factory in self.policy.extensions:
                if factory.name != name or any(ext.name == name for ext in accepted):
                    continue
                try:
                    response_params, extension = factory.process_request_params(params, accepted)
                except NegotiationError:
                    continue
                accepted.append(extension)
                response.append((name, response_params))
                break
        if not accepted:
            return None
        # One RSV1 extension per connection is all that RFC 7692 and browsers use.
        self.extension = accepted[0]
        return build_extensions(response[:1])

    def _negotiate_subprotocol(self, values: list[str]) -> str | None:
        # Subprotocol names are case-sensitive (RFC 6455 section 11.5).
        offered = parse_tokens(values, "Sec-WebSocket-Protocol", lowercase=False)
        policy = self.policy
        if policy.select_subprotocol is not None:
            chosen = policy.select_subprotocol(offered)
            if chosen is not None and chosen not in offered:
                raise LocalProtocolError(f"select_subprotocol returned {chosen!r}, which the client didn't offer")
            return chosen
        if not offered or not policy.subprotocols:
            return None
        for subprotocol in policy.subprotocols:
            if subprotocol in offered:
                return subprotocol
        raise NegotiationError(
            f"no supported subprotocol: client offered {', '.join(offered)}; "
            f"server speaks {', '.join(policy.subprotocols)}"
        )

    def reject(self, status: int, text: str = "", *, keep_alive: bool = True) -> Response:
        """Build a plain HTTP response with a text body.

        With ``keep_alive``, the connection may serve another request after it, when the
        request allows it.
        """
        body = text.encode()
        headers = Headers(
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
            ]
        )
        if not keep_alive:
            headers["Connection"] = "close"
        return Response(status_code=status, reason_phrase=_reason(status), headers=headers, body=body)

    def send_response(self, response: Response) -> None:
        """Send the answer to the last request.

        ``101`` opens the connection and parses any frames that followed the request; any
        other status ends the connection, unless both sides want to keep it alive.
        """
        if self.state is not CONNECTING or (self.request is None and self.handshake_exc is None):
            raise LocalProtocolError(f"can't send a handshake response when state is {self.state.name}")
        if response.status_code == 101:
            if self.handshake_exc is not None:
                raise LocalProtocolError("can't accept a handshake that failed")
            self.state = next_state(self.state, Action.ACCEPT)
            self._queue(response.serialize())
            # The request stays with the connection for its whole life: keep it lean.
            if self.request is not None:
                self.request.headers.compact()
            response.headers.compact()
            data, self._leftover = self._leftover, b""
            if data:
                self.receive_data(data)
            return
        self._queue(response.serialize())
        keep_alive = (
            self.request is not None
            and self.request.keep_alive
            and self.handshake_exc is None
            and "close" not in (response.headers.get("Connection") or "").lower()
        )
        if keep_alive:
            self.state = next_state(self.state, Action.SEND_RESPONSE)
            self.request = None
            self._http = RequestParser(self.limits)
            data, self._leftover = self._leftover, b""
            if data:
                self.receive_data(data)
        else:
            self.state = next_state(self.state, Action.REJECT)
            self.send_eof()
            self._discard = True

    # --- streamed responses (HTTP-streaming, server-sent events) ----------------------------

    def send_stream_head(self, response: Response) -> None:
        """Start a streamed answer to the last request: its head now, its body in pieces.

        The body goes out through :meth:`send_body` and ends with :meth:`end_stream`, which
        closes the connection: a stream is the last answer on its connection. HTTP/1.1 frames
        each piece as a chunk (RFC 9112 section 7.1); HTTP/1.0, which has no chunks, ends the
        body by closing. What the client sends after its request is ignored meanwhile.

        Raises:
            LocalProtocolError: no request is waiting for its answer.
        """
        if self.state is not CONNECTING or self.request is None or self.handshake_exc is not None:
            raise LocalProtocolError(f"can't stream a response when state is {self.state.name}")
        if self._chunked is not None:
            raise LocalProtocolError("can't stream a second response")
        chunked = self.request.http_version != "1.0"
        headers = Headers(response.headers.items())
        headers["Transfer-Encoding" if chunked else "Connection"] = "chunked" if chunked else "close"
        head = Response(status_code=response.status_code, reason_phrase=response.reason_phrase, headers=headers)
        self._queue(head.serialize())
        self._chunked = chunked
        self._discard = True
        self._leftover = b""

    def send_body(self, data: bytes) -> None:
        """Queue a piece of the streamed body; dropped once the client has gone.

        Raises:
            LocalProtocolError: no streamed response is open.
        """
        if self._chunked is None:
            raise LocalProtocolError(f"can't send a body piece without a streamed response, state is {self.state.name}")
        if not data or self.state is not CONNECTING:
            # An empty chunk would end the body; a closed connection takes nothing.
            return
        self._queue(b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data)

    def end_stream(self) -> None:
        """End the streamed body and the connection; safe to call twice.

        Raises:
            LocalProtocolError: no streamed response was started.
        """
        if self._chunked is None:
            raise LocalProtocolError(f"can't end a stream that wasn't started, state is {self.state.name}")
        if self.state is not CONNECTING:
            return
        if self._chunked:
            self._queue(b"0\r\n\r\n")
        self.state = next_state(self.state, Action.REJECT)
        self.send_eof()

    @property
    def streaming(self) -> bool:
        """Whether a streamed response is open: started, not ended, the client still there."""
        return self._chunked is not None and self.state is CONNECTING

    @property
    def open(self) -> bool:
        """Whether the handshake succeeded and the connection hasn't started closing."""
        return self.state is OPEN


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
