"""The exception tree of wavecast.

Every exception that wavecast raises on purpose derives from :class:`WavecastError`::

    WavecastError
    ├── LocalProtocolError           the caller used the API wrongly ("can't send text when state is CLOSING")
    ├── RemoteProtocolError          the peer broke the protocol; carries the close code or HTTP status to answer
    │   ├── InvalidHandshake         the opening handshake failed; ``status`` is the HTTP status to answer
    │   │   ├── InvalidHeader        a header is missing or malformed
    │   │   ├── InvalidOrigin        the Origin is not allowed (403)
    │   │   ├── InvalidUpgrade       not a WebSocket upgrade (426)
    │   │   ├── InvalidStatus        the server answered something other than 101 (client side)
    │   │   └── NegotiationError     no acceptable subprotocol or extension
    │   ├── PayloadTooBig            a limit on messages or frames was exceeded (close code 1009)
    │   └── InvalidPayload           a text message or close reason is not valid UTF-8 (close code 1007)
    ├── InvalidURI                   the URI given to ``connect()`` is not a ws:// or wss:// URI
    ├── ConnectionClosed             the connection is closed; ``code`` and ``reason`` say how
    │   ├── ConnectionClosedOK       closed with 1000 or 1001, or without a status (1005)
    │   └── ConnectionClosedError    closed with any other code, or without a close frame
    ├── StateError                   a real-time session or subscription was asked for a change its state forbids
    ├── CommandError                 a real-time command fails; ``error`` is the reply's code and message
    ├── DisconnectError              a real-time client must be disconnected; ``disconnect`` says how
    ├── EngineError                  a broker or presence engine failed; nothing was delivered
    │   └── EngineLimitError         it refused work over one of its limits (history bytes of a user)
    └── ConfigError                  a configuration value is invalid; the message names the field
        └── AppLoadError             the application's setup function (server.app) can't be imported or failed

Messages are lowercase and give the action, the state, or the limit against the value seen.
"""

from __future__ import annotations

from .codes import CloseCode, Disconnect, Error

__all__ = [
    "AppLoadError",
    "CommandError",
    "ConfigError",
    "ConnectionClosed",
    "ConnectionClosedError",
    "ConnectionClosedOK",
    "DisconnectError",
    "EngineError",
    "EngineLimitError",
    "InvalidHandshake",
    "InvalidHeader",
    "InvalidOrigin",
    "InvalidPayload",
    "InvalidStatus",
    "InvalidURI",
    "InvalidUpgrade",
    "LocalProtocolError",
    "NegotiationError",
    "PayloadTooBig",
    "RemoteProtocolError",
    "StateError",
    "WavecastError",
]


class WavecastError(Exception):
    """Base class of every exception that wavecast raises."""


class LocalProtocolError(WavecastError):
    """The caller did something the protocol does not allow in the current state."""


class RemoteProtocolError(WavecastError):
    """The peer broke the protocol.

    Attributes:
        close_code: the WebSocket close code to send, when the connection is open.
        status: the HTTP status to answer, when the handshake is in progress.
    """

    def __init__(
        self,
        message: str,
        *,
        close_code: int = CloseCode.PROTOCOL_ERROR,
        status: int = 400,
    ) -> None:
        super().__init__(message)
        self.close_code = close_code
        self.status = status


class InvalidHandshake(RemoteProtocolError):
    """The opening handshake failed."""


class InvalidHeader(InvalidHandshake):
    """A handshake header is missing or has a wrong value."""

    def __init__(self, name: str, value: str | None = None, *, status: int = 400) -> None:
        if value is None:
            message = f"missing {name} header"
        elif value == "":
            message = f"empty {name} header"
        else:
            message = f"invalid {name} header: {value!r}"
        super().__init__(message, status=status)
        self.name = name
        self.value = value


class InvalidOrigin(InvalidHeader):
    """The request's Origin is not in the allow-list."""

    def __init__(self, origin: str | None) -> None:
        super().__init__("Origin", origin, status=403)


class InvalidUpgrade(InvalidHeader):
    """The request is not a WebSocket upgrade, or asks for another protocol version."""

    def __init__(self, name: str, value: str | None = None) -> None:
        super().__init__(name, value, status=426)


class InvalidStatus(InvalidHandshake):
    """The server rejected the handshake (client side)."""

    def __init__(self, status_code: int, reason: str, body: bytes = b"") -> None:
        super().__init__(f"server rejected WebSocket connection: HTTP {status_code} {reason}".rstrip())
        self.status_code = status_code
        self.reason = reason
        self.body = body


class NegotiationError(InvalidHandshake):
    """No acceptable subprotocol or extension parameters."""


class PayloadTooBig(RemoteProtocolError):
    """A message, frame or fragment count exceeded its limit."""

    def __init__(self, message: str) -> None:
        super().__init__(message, close_code=CloseCode.MESSAGE_TOO_BIG, status=413)


class InvalidPayload(RemoteProtocolError):
    """A text message or close reason is not valid UTF-8."""

    def __init__(self, message: str) -> None:
        super().__init__(message, close_code=CloseCode.INVALID_DATA)


class InvalidURI(WavecastError):
    """The URI is not a valid ws:// or wss:// URI."""

    def __init__(self, uri: str, why: str) -> None:
        super().__init__(f"{uri!r} isn't a valid WebSocket URI: {why}")
        self.uri = uri


class ConnectionClosed(WavecastError):
    """The connection is closed.

    Attributes:
        code: the close code received; 1006 when no close frame was received.
        reason: the close reason received.
        sent_code: the close code this side sent, if it sent a close frame.
        sent_reason: the close reason this side sent.
        rcvd_then_sent: whether the peer started the closing handshake, when both sides sent one.
    """

    def __init__(
        self,
        code: int,
        reason: str = "",
        *,
        sent_code: int | None = None,
        sent_reason: str = "",
        rcvd_then_sent: bool | None = None,
    ) -> None:
        self.code = code
        self.reason = reason
        self.sent_code = sent_code
        self.sent_reason = sent_reason
        self.rcvd_then_sent = rcvd_then_sent
        message = f"connection closed: {_describe(code, reason)}"
        if sent_code is not None and (sent_code != code or code == CloseCode.ABNORMAL_CLOSURE):
            message += f"; sent {_describe(sent_code, sent_reason)}"
        super().__init__(message)


def _describe(code: int, reason: str) -> str:
    detail = f" ({reason})" if reason else ""
    return f"{code} {CloseCode.describe(code)}{detail}"


class ConnectionClosedOK(ConnectionClosed):
    """The connection closed normally (1000), because an endpoint went away (1001), or without a status (1005)."""


class ConnectionClosedError(ConnectionClosed):
    """The connection closed with an error code, or without a closing handshake."""


class StateError(WavecastError):
    """A real-time session or subscription was asked for a change that its state table
    doesn't allow: a bug in the caller, as :exc:`LocalProtocolError` is for a connection."""


class CommandError(WavecastError):
    """A real-time command fails with ``error``; raise it from a hook to refuse a command.

    ``raise CommandError(ERROR_PERMISSION_DENIED)``, or an application error with a code
    in 400-1999: ``raise CommandError(Error(400, "room is full"))``.
    """

    def __init__(self, error: Error) -> None:
        super().__init__(str(error))
        self.error = error


class DisconnectError(WavecastError):
    """A real-time client must be disconnected; raise it from a hook to end the connection.

    ``raise DisconnectError(Disconnect(4501, "banned"))``: clients reconnect after codes
    4000-4499 and stop after 4500-4999.
    """

    def __init__(self, disconnect: Disconnect) -> None:
        super().__init__(f"disconnect {disconnect.code}: {disconnect.reason}")
        self.disconnect = disconnect


class EngineError(WavecastError):
    """A broker or presence engine failed, for example because Redis is unreachable."""


class EngineLimitError(EngineError):
    """An engine refused work over one of its limits; nothing was stored or delivered.

    A client whose publication is refused gets error 106 "limit exceeded".
    """


class ConfigError(WavecastError, ValueError):
    """A configuration value is invalid; the message names the field."""


class AppLoadError(ConfigError):
    """The application named by ``server.app`` can't be imported, or its setup function failed.

    Attributes:
        path: the import path, ``"module:attribute"``.
        reason: what went wrong, in a sentence.
        details: the traceback of the application's code, when it raised; ``""`` otherwise.
    """

    def __init__(self, path: str, reason: str, details: str = "") -> None:
        self.path = path
        self.reason = reason
        self.details = details
        message = f"server.app: can't load {path!r}: {reason}"
        super().__init__(f"{message}\n{details}" if details else message)
