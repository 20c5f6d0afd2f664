"""Codes as data: WebSocket close codes (RFC 6455 section 7.4) and what they mean."""

from __future__ import annotations

import enum

__all__ = [
    "OK_CLOSE_CODES",
    "CloseCode",
    "is_valid_close_code",
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

#: Codes that end a connection without an error.
OK_CLOSE_CODES: frozenset[int] = frozenset({CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY})

# Codes that an endpoint may put in a close frame: 1005, 1006 and 1015 only ever appear in
# APIs, 1004 is reserved, and 1016-2999 are unassigned (RFC 6455 section 7.4.2).
_SENDABLE_CLOSE_CODES: frozenset[int] = frozenset(
    {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014}
)


def is_valid_close_code(code: int) -> bool:
    """Tell whether ``code`` may appear in a close frame on the wire."""
    return code in _SENDABLE_CLOSE_CODES or 3000 <= code < 5000
