"""The client side: send the handshake request and check the server's response."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from ..exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    InvalidUpgrade,
    LocalProtocolError,
    NegotiationError,
)
from ..version import version
from .connection import CLIENT, Protocol
from .events import Request, Response
from .extensions import ClientExtensionFactory, Extension
from .handshake import accept_key, build_extensions, generate_key, parse_extensions, parse_tokens
from .headers import Headers, HeadersLike
from .http import ResponseParser
from .limits import DEFAULT_LIMITS, Limits
from .state import CONNECTING, Action, next_state
from .uri import WebSocketURI

__all__ = ["USER_AGENT", "ClientProtocol"]

USER_AGENT = f"wavecast/{version}"


class ClientProtocol(Protocol):
    """The client side of a WebSocket connection.

    Call :meth:`connect` for the request, :meth:`send_request` to queue it, then feed the
    server's bytes; a :class:`~wavecast.protocol.events.Response` event tells that the
    handshake ended, and :attr:`handshake_exc` is set when it failed.

    Args:
        uri: where to connect.
        origin: the Origin header to send, if any.
        subprotocols: the subprotocols to offer, in order of preference.
        extensions: the extensions to offer.
        additional_headers: more headers for the request.
        user_agent: the User-Agent header; ``None`` sends none.
        limits: the limits to enforce on the server.
    """

    __slots__ = (
        "_http",
        "_request_sent",
        "additional_headers",
        "available_subprotocols",
        "extension_factories",
        "handshake_exc",
        "key",
        "origin",
        "response",
        "subprotocol",
        "uri",
        "user_agent",
    )

    def __init__(
        self,
        uri: WebSocketURI,
        *,
        origin: str | None = None,
        subprotocols: Sequence[str] | None = None,
        extensions: Sequence[ClientExtensionFactory] = (),
        additional_headers: HeadersLike | None = None,
        user_agent: str | None = USER_AGENT,
        limits: Limits = DEFAULT_LIMITS,
        logger: logging.Logger | logging.LoggerAdapter[logging.Logger] | None = None,
    ) -> None:
        super().__init__(CLIENT, limits=limits, state=CONNECTING, logger=logger)
        self.uri = uri
        self.origin = origin
        # tuple() of a tuple is the tuple itself: no copy per connection.
        self.available_subprotocols = tuple(subprotocols) if subprotocols else ()
        self.extension_factories = tuple(extensions)
        self.additional_headers = additional_headers
        self.user_agent = user_agent
        self.key = generate_key()
        #: The subprotocol the server chose, if any.
        self.subprotocol: str | None = None
        #: The server's response, once it arrived.
        self.response: Response | None = None
        #: Why the handshake failed, if it did.
        self.handshake_exc: InvalidHandshake | None = None
        self._http = ResponseParser(limits)
        self._request_sent = False

    def connect(self) -> Request:
        """Build the handshake request (RFC 6455 section 4.1)."""
        headers = Headers(
            [
                ("Host", self.uri.host_header),
                ("Upgrade", "websocket"),
                ("Connection", "Upgrade"),
                ("Sec-WebSocket-Key", self.key),
                ("Sec-WebSocket-Version", "13"),
            ]
        )
        if self.origin is not None:
            headers["Origin"] = self.origin
        if self.extension_factories:
            offers = [(factory.name, factory.get_request_params()) for factory in self.extension_factories]
            headers["Sec-WebSocket-Extensions"] = build_extensions(offers)
        if self.available_subprotocols:
            headers["Sec-WebSocket-Protocol"] = ", ".join(self.available_subprotocols)
        if self.additional_headers is not None:
            for name, value in Headers(self.additional_headers).items():
                headers.add(name, value)
        if self.user_agent is not None and "User-Agent" not in headers:
            headers["User-Agent"] = self.user_agent
        path, _, query = self.uri.path.partition("?")
        return Request(path=path, query=query, headers=headers)

    def send_request(self, request: Request) -> None:
        """Queue the handshake request."""
        if self._request_sent:
            raise LocalProtocolError("can't send a handshake request twice")
        self.state = next_state(self.state, Action.SEND_REQUEST)
        self._request_sent = True
        self._queue(request.serialize())

    def _receive_handshake(self, data: bytes) -> bytes:
        if not self._request_sent:
            raise LocalProtocolError("can't receive a handshake response before sending the request")
        try:
            result = self._http.feed(data)
            if result is None:
                return b""
            response, tail = result
            self.response = response
            self._check_response(response)
        except InvalidHandshake as exc:
            self.handshake_exc = exc
            if self.response is not None:
                self._event(self.response)
            self.state = next_state(self.state, Action.FAIL)
            self.send_eof()
            self._discard = True
            return b""
        self.state = next_state(self.state, Action.ACCEPT)
        self._event(response)
        return tail

    def _check_response(self, response: Response) -> None:
        """Check the response against RFC 6455 section 4.2.2 and apply its negotiation."""
        if response.status_code != 101:
            raise InvalidStatus(response.status_code, response.reason_phrase, response.body)
        headers = response.headers
        upgrade = parse_tokens(headers.get_all("Upgrade"), "Upgrade")
        if upgrade != ["websocket"]:
            raise InvalidUpgrade("Upgrade", ", ".join(headers.get_all("Upgrade")) or None)
        connection = parse_tokens(headers.get_all("Connection"), "Connection")
        if "upgrade" not in connection:
            raise InvalidUpgrade("Connection", ", ".join(headers.get_all("Connection")) or None)
        accept = headers.get_all("Sec-WebSocket-Accept")
        if accept != [accept_key(self.key)]:
            raise InvalidHeader("Sec-WebSocket-Accept", ", ".join(accept) if accept else None)

        accepted: list[Extension] = []
        for name, params in parse_extensions(headers.get_all("Sec-WebSocket-Extensions")):
            for factory in self.extension_factories:
                if factory.name == name:
                    accepted.append(factory.process_response_params(params, accepted))
                    break
            else:
                raise NegotiationError(f"server accepted the extension {name}, which wasn't offered")
        if len(accepted) > 1:
            raise NegotiationError("server accepted more than one extension")
        self.extension = accepted[0] if accepted else None

        subprotocols = parse_tokens(
            headers.get_all("Sec-WebSocket-Protocol"), "Sec-WebSocket-Protocol", lowercase=False
        )
        if len(subprotocols) > 1:
            raise NegotiationError(f"server chose several subprotocols: {', '.join(subprotocols)}")
        if subprotocols:
            if subprotocols[0] not in self.available_subprotocols:
                raise NegotiationError(f"server chose the subprotocol {subprotocols[0]}, which wasn't offered")
            self.subprotocol = subprotocols[0]

    def receive_eof(self) -> None:
        if self.state is CONNECTING and self.handshake_exc is None and self._request_sent:
            self.handshake_exc = InvalidHandshake("connection closed during the opening handshake")
        super().receive_eof()
