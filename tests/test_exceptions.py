from __future__ import annotations

import pytest

import wavecast.exceptions
from wavecast.codes import DISCONNECT_SLOW, ERROR_PERMISSION_DENIED, CloseCode
from wavecast.exceptions import (
    CommandError,
    ConfigError,
    ConnectionClosed,
    ConnectionClosedError,
    ConnectionClosedOK,
    DisconnectError,
    EngineError,
    EngineLimitError,
    InvalidHandshake,
    InvalidHeader,
    InvalidOrigin,
    InvalidPayload,
    InvalidStatus,
    InvalidUpgrade,
    InvalidURI,
    LocalProtocolError,
    NegotiationError,
    PayloadTooBig,
    RemoteProtocolError,
    StateError,
    WavecastError,
)

# Each exception and its parent, as the module docstring draws them.
TREE = {
    LocalProtocolError: WavecastError,
    RemoteProtocolError: WavecastError,
    InvalidHandshake: RemoteProtocolError,
    InvalidHeader: InvalidHandshake,
    InvalidOrigin: InvalidHeader,
    InvalidUpgrade: InvalidHeader,
    InvalidStatus: InvalidHandshake,
    NegotiationError: InvalidHandshake,
    PayloadTooBig: RemoteProtocolError,
    InvalidPayload: RemoteProtocolError,
    InvalidURI: WavecastError,
    ConnectionClosed: WavecastError,
    ConnectionClosedOK: ConnectionClosed,
    ConnectionClosedError: ConnectionClosed,
    StateError: WavecastError,
    CommandError: WavecastError,
    DisconnectError: WavecastError,
    EngineError: WavecastError,
    EngineLimitError: EngineError,
    ConfigError: WavecastError,
}


@pytest.mark.parametrize(("exc", "parent"), TREE.items())
def test_tree(exc: type[Exception], parent: type[Exception]) -> None:
    assert exc.__bases__[0] is parent
    assert exc.__name__ in wavecast.exceptions.__doc__  # type: ignore[operator]
    assert exc.__name__ in wavecast.exceptions.__all__


def test_root() -> None:
    assert WavecastError.__bases__ == (Exception,)


def test_remote_protocol_error_carries_its_answer() -> None:
    exc = RemoteProtocolError("bad frame")
    assert (str(exc), exc.close_code, exc.status) == ("bad frame", CloseCode.PROTOCOL_ERROR, 400)
    exc = RemoteProtocolError("x", close_code=1011, status=500)
    assert (exc.close_code, exc.status) == (1011, 500)


def test_invalid_handshake() -> None:
    exc = InvalidHandshake("too long", status=431)
    assert (str(exc), exc.status, exc.close_code) == ("too long", 431, CloseCode.PROTOCOL_ERROR)


@pytest.mark.parametrize(
    ("value", "message"),
    [(None, "missing Host header"), ("", "empty Host header"), ("a b", "invalid Host header: 'a b'")],
)
def test_invalid_header(value: str | None, message: str) -> None:
    exc = InvalidHeader("Host", value)
    assert (str(exc), exc.name, exc.value, exc.status) == (message, "Host", value, 400)
    assert InvalidHeader("Host", status=431).status == 431


def test_invalid_origin() -> None:
    exc = InvalidOrigin("https://evil.com")
    assert (str(exc), exc.name, exc.value, exc.status) == (
        "invalid Origin header: 'https://evil.com'",
        "Origin",
        "https://evil.com",
        403,
    )
    assert str(InvalidOrigin(None)) == "missing Origin header"


def test_invalid_upgrade() -> None:
    exc = InvalidUpgrade("Upgrade", "h2c")
    assert (str(exc), exc.status) == ("invalid Upgrade header: 'h2c'", 426)
    assert str(InvalidUpgrade("Connection")) == "missing Connection header"


def test_invalid_status() -> None:
    exc = InvalidStatus(403, "Forbidden", b"go away")
    assert str(exc) == "server rejected WebSocket connection: HTTP 403 Forbidden"
    assert (exc.status_code, exc.reason, exc.body) == (403, "Forbidden", b"go away")
    exc = InvalidStatus(599, "")
    assert str(exc) == "server rejected WebSocket connection: HTTP 599"
    assert exc.body == b""


def test_payload_errors_carry_close_codes() -> None:
    exc = PayloadTooBig("message of 2 bytes, expected no more than 1 byte")
    assert (exc.close_code, exc.status) == (CloseCode.MESSAGE_TOO_BIG, 413)
    exc = InvalidPayload("invalid UTF-8")
    assert (exc.close_code, exc.status) == (CloseCode.INVALID_DATA, 400)


def test_invalid_uri() -> None:
    exc = InvalidURI("http://x", "scheme isn't ws or wss")
    assert str(exc) == "'http://x' isn't a valid WebSocket URI: scheme isn't ws or wss"
    assert exc.uri == "http://x"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"code": 1000}, "connection closed: 1000 OK"),
        ({"code": 1001, "reason": "bye"}, "connection closed: 1001 going away (bye)"),
        ({"code": 1000, "sent_code": 1000}, "connection closed: 1000 OK"),
        ({"code": 4000, "reason": "x", "sent_code": 1000}, "connection closed: 4000 private use (x); sent 1000 OK"),
        (
            {"code": 1006, "sent_code": 1006},
            "connection closed: 1006 abnormal closure [internal]; sent 1006 abnormal closure [internal]",
        ),
        (
            {"code": 1006, "sent_code": 1002, "sent_reason": "bad"},
            "connection closed: 1006 abnormal closure [internal]; sent 1002 protocol error (bad)",
        ),
    ],
)
def test_connection_closed(kwargs: dict[str, object], message: str) -> None:
    exc = ConnectionClosed(**kwargs)  # type: ignore[arg-type]
    assert str(exc) == message
    assert exc.code == kwargs["code"]
    assert exc.reason == kwargs.get("reason", "")
    assert exc.sent_code == kwargs.get("sent_code")
    assert exc.sent_reason == kwargs.get("sent_reason", "")
    assert exc.rcvd_then_sent is None


def test_connection_closed_subclasses() -> None:
    exc = ConnectionClosedOK(1000, rcvd_then_sent=True)
    assert exc.rcvd_then_sent is True
    assert isinstance(ConnectionClosedError(1006), ConnectionClosed)


def test_real_time_errors() -> None:
    exc = CommandError(ERROR_PERMISSION_DENIED)
    assert (str(exc), exc.error) == ("103: permission denied", ERROR_PERMISSION_DENIED)
    disconnect = DisconnectError(DISCONNECT_SLOW)
    assert (str(disconnect), disconnect.disconnect) == ("disconnect 3008: slow", DISCONNECT_SLOW)
    assert str(EngineError("redis is unreachable")) == "redis is unreachable"
    assert ConfigError.__bases__ == (WavecastError, ValueError)
    with pytest.raises(ValueError, match=r"websocket\.max_message_size"):
        raise ConfigError("websocket.max_message_size must be positive")
