"""Codes as data: WebSocket close codes (RFC 6455 section 7.4), and the error, disconnect and
unsubscribe codes of the real-time protocol, with the same numbers as Centrifugo's."""

from __future__ import annotations

import dataclasses
import enum

__all__ = [
    "DISCONNECTS",
    "DISCONNECT_BAD_REQUEST",
    "DISCONNECT_CHANNEL_LIMIT",
    "DISCONNECT_CONNECTION_CLOSED",
    "DISCONNECT_CONNECTION_LIMIT",
    "DISCONNECT_EXPIRED",
    "DISCONNECT_FORCE_NO_RECONNECT",
    "DISCONNECT_FORCE_RECONNECT",
    "DISCONNECT_INAPPROPRIATE_PROTOCOL",
    "DISCONNECT_INSUFFICIENT_STATE",
    "DISCONNECT_INVALID_TOKEN",
    "DISCONNECT_NOT_AVAILABLE",
    "DISCONNECT_NO_PONG",
    "DISCONNECT_PERMISSION_DENIED",
    "DISCONNECT_SERVER_ERROR",
    "DISCONNECT_SHUTDOWN",
    "DISCONNECT_SLOW",
    "DISCONNECT_STALE",
    "DISCONNECT_SUB_EXPIRED",
    "DISCONNECT_TOO_MANY_ERRORS",
    "DISCONNECT_TOO_MANY_REQUESTS",
    "DISCONNECT_WRITE_ERROR",
    "ERRORS",
    "ERROR_ALREADY_SUBSCRIBED",
    "ERROR_BAD_REQUEST",
    "ERROR_EXPIRED",
    "ERROR_INTERNAL",
    "ERROR_LIMIT_EXCEEDED",
    "ERROR_METHOD_NOT_FOUND",
    "ERROR_NOT_AVAILABLE",
    "ERROR_PERMISSION_DENIED",
    "ERROR_TOKEN_EXPIRED",
    "ERROR_TOKEN_REVOKED",
    "ERROR_TOO_MANY_REQUESTS",
    "ERROR_UNAUTHORIZED",
    "ERROR_UNKNOWN_CHANNEL",
    "ERROR_UNRECOVERABLE_POSITION",
    "OK_CLOSE_CODES",
    "UNSUBSCRIBES",
    "UNSUBSCRIBE_CLIENT",
    "UNSUBSCRIBE_DISCONNECT",
    "UNSUBSCRIBE_EXPIRED",
    "UNSUBSCRIBE_INSUFFICIENT_STATE",
    "UNSUBSCRIBE_SERVER",
    "CloseCode",
    "Disconnect",
    "Error",
    "Unsubscribe",
    "is_valid_close_code",
    "reconnect_after",
]


class CloseCode(enum.IntEnum):
    """Close codes registered by RFC 6455 and IANA."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    # 1004 is reserved.
    NO_STATUS_RCVD = 1005
    ABNORMAL_CLOSURE = 1006
    INVALID_DATA = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014
    TLS_HANDSHAKE = 1015

    @staticmethod
    def describe(code: int) -> str:
        """Return a short explanation of ``code``."""
        try:
            return CLOSE_CODE_EXPLANATIONS[CloseCode(code)]
        except ValueError:
            if 3000 <= code < 4000:
                return "registered"
            if 4000 <= code < 5000:
                return "private use"
            return "unknown"


CLOSE_CODE_EXPLANATIONS: dict[CloseCode, str] = {
    CloseCode.NORMAL_CLOSURE: "OK",
    CloseCode.GOING_AWAY: "going away",
    CloseCode.PROTOCOL_ERROR: "protocol error",
    CloseCode.UNSUPPORTED_DATA: "unsupported data",
    CloseCode.NO_STATUS_RCVD: "no status received [internal]",
    CloseCode.ABNORMAL_CLOSURE: "abnormal closure [internal]",
    CloseCode.INVALID_DATA: "invalid frame payload data",
    CloseCode.POLICY_VIOLATION: "policy violation",
    CloseCode.MESSAGE_TOO_BIG: "message too big",
    CloseCode.MANDATORY_EXTENSION: "mandatory extension",
    CloseCode.INTERNAL_ERROR: "internal error",
    CloseCode.SERVICE_RESTART: "service restart",
    CloseCode.TRY_AGAIN_LATER: "try again later",
    CloseCode.BAD_GATEWAY: "bad gateway",
    CloseCode.TLS_HANDSHAKE: "TLS handshake failure [internal]",
}

#: Codes that end a connection without an error: a normal closure, a peer going away, and a
#: close frame without a status (1005), which a browser's ``close()`` sends; as websockets'
#: ``ConnectionClosedOK``. Iterating over a connection stops quietly on these.
OK_CLOSE_CODES: frozenset[int] = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY, CloseCode.NO_STATUS_RCVD})

# Codes that an endpoint may put in a close frame: 1005, 1006 and 1015 only ever appear in
# APIs, 1004 is reserved, and 1016-2999 are unassigned (RFC 6455 section 7.4.2).
_SENDABLE_CLOSE_CODES: frozenset[int] = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_valid_close_code(code: int) -> bool:
    """Tell whether ``code`` may appear in a close frame on the wire."""
    return code in _SENDABLE_CLOSE_CODES or 3000 <= code < 5000


# --- the real-time protocol: Centrifugo's numbers, so that its SDKs work unchanged ----------


@dataclasses.dataclass(frozen=True, slots=True)
class Error:
    """An error in a reply to a client command (Centrifugo's ``Error``).

    Codes 0-399 are wavecast's own; applications use 400-1999. A ``temporary`` error may
    succeed when retried.
    """

    code: int
    message: str
    temporary: bool = False

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


@dataclasses.dataclass(frozen=True, slots=True)
class Disconnect:
    """Why the server ends a client connection; sent as the WebSocket close code and reason.

    Clients reconnect after codes 3000-3499 and 4000-4499 and stop after 3500-3999 and
    4500-4999; applications use 4000-4999. The reason must fit a close frame (123 bytes).
    """

    code: int
    reason: str

    @property
    def reconnect(self) -> bool:
        """Whether a client should reconnect, by Centrifugo's range rule."""
        return reconnect_after(self.code)


@dataclasses.dataclass(frozen=True, slots=True)
class Unsubscribe:
    """Why the server ends a subscription. Clients resubscribe after codes >= 2500."""

    code: int
    reason: str

    @property
    def resubscribe(self) -> bool:
        return self.code >= 2500


def reconnect_after(code: int) -> bool:
    """Tell whether a client should reconnect after a disconnect with ``code``."""
    return not (3500 <= code < 4000 or 4500 <= code < 5000)


ERROR_INTERNAL = Error(100, "internal server error", temporary=True)
ERROR_UNAUTHORIZED = Error(101, "unauthorized")
ERROR_UNKNOWN_CHANNEL = Error(102, "unknown channel")
ERROR_PERMISSION_DENIED = Error(103, "permission denied")
ERROR_METHOD_NOT_FOUND = Error(104, "method not found")
ERROR_ALREADY_SUBSCRIBED = Error(105, "already subscribed")
ERROR_LIMIT_EXCEEDED = Error(106, "limit exceeded")
ERROR_BAD_REQUEST = Error(107, "bad request")
ERROR_NOT_AVAILABLE = Error(108, "not available")
ERROR_TOKEN_EXPIRED = Error(109, "token expired")
ERROR_EXPIRED = Error(110, "expired")
ERROR_TOO_MANY_REQUESTS = Error(111, "too many requests", temporary=True)
ERROR_UNRECOVERABLE_POSITION = Error(112, "unrecoverable position")
#: A connection or subscription token was revoked: the SDK asks for a new one.
ERROR_TOKEN_REVOKED = Error(113, "token revoked")

#: The client's transport closed without a disconnect from the server.
DISCONNECT_CONNECTION_CLOSED = Disconnect(3000, "connection closed")
DISCONNECT_SHUTDOWN = Disconnect(3001, "shutdown")
DISCONNECT_SERVER_ERROR = Disconnect(3004, "internal server error")
DISCONNECT_EXPIRED = Disconnect(3005, "connection expired")
DISCONNECT_SUB_EXPIRED = Disconnect(3006, "subscription expired")
DISCONNECT_SLOW = Disconnect(3008, "slow")
DISCONNECT_WRITE_ERROR = Disconnect(3009, "write error")
DISCONNECT_INSUFFICIENT_STATE = Disconnect(3010, "insufficient state")
DISCONNECT_FORCE_RECONNECT = Disconnect(3011, "force reconnect")
DISCONNECT_NO_PONG = Disconnect(3012, "no pong")
DISCONNECT_TOO_MANY_REQUESTS = Disconnect(3013, "too many requests")
DISCONNECT_INVALID_TOKEN = Disconnect(3500, "invalid token")
DISCONNECT_BAD_REQUEST = Disconnect(3501, "bad request")
DISCONNECT_STALE = Disconnect(3502, "stale")
DISCONNECT_FORCE_NO_RECONNECT = Disconnect(3503, "force disconnect")
DISCONNECT_CONNECTION_LIMIT = Disconnect(3504, "connection limit")
DISCONNECT_CHANNEL_LIMIT = Disconnect(3505, "channel limit")
#: The client's protocol can't carry what it would receive: binary data for a JSON client.
DISCONNECT_INAPPROPRIATE_PROTOCOL = Disconnect(3506, "inappropriate protocol")
#: The client tried to access what it isn't allowed to, where an error reply can't say so.
DISCONNECT_PERMISSION_DENIED = Disconnect(3507, "permission denied")
#: What the client asked for isn't available, where an error reply can't say so: a ``send``,
#: which has no reply, to a node without an ``on_message`` hook (as Centrifuge does).
DISCONNECT_NOT_AVAILABLE = Disconnect(3508, "not available")
DISCONNECT_TOO_MANY_ERRORS = Disconnect(3509, "too many errors")

#: Codes below 2000 are never sent: they describe unsubscriptions the client asked for.
UNSUBSCRIBE_CLIENT = Unsubscribe(0, "client unsubscribed")
UNSUBSCRIBE_DISCONNECT = Unsubscribe(1, "client disconnected")
UNSUBSCRIBE_SERVER = Unsubscribe(2000, "server unsubscribe")
UNSUBSCRIBE_INSUFFICIENT_STATE = Unsubscribe(2500, "insufficient state")
UNSUBSCRIBE_EXPIRED = Unsubscribe(2501, "subscription expired")

ERRORS: tuple[Error, ...] = tuple(v for k, v in list(globals().items()) if k.startswith("ERROR_"))
DISCONNECTS: tuple[Disconnect, ...] = tuple(v for k, v in list(globals().items()) if k.startswith("DISCONNECT_"))
UNSUBSCRIBES: tuple[Unsubscribe, ...] = tuple(v for k, v in list(globals().items()) if k.startswith("UNSUBSCRIBE_"))
