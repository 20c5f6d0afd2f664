from __future__ import annotations

import base64

import pytest

from wavecast.exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidStatus,
    InvalidUpgrade,
    LocalProtocolError,
    NegotiationError,
)
from wavecast.protocol import (
    CLOSED,
    CONNECTING,
    OPEN,
    USER_AGENT,
    ClientProtocol,
    Headers,
    Limits,
    Ping,
    Response,
    parse_uri,
)
from wavecast.version import version

from .helpers import (
    OP_PING,
    OP_TEXT,
    Frame,
    Reverse,
    ReverseClientFactory,
    assert_frames_sent,
    feed,
    open_client,
    response_bytes,
    server_frame,
)


def new_client(uri: str = "ws://example.com/chat", **kwargs: object) -> ClientProtocol:
    client = ClientProtocol(parse_uri(uri), **kwargs)  # type: ignore[arg-type]
    client.send_request(client.connect())
    client.data_to_send()
    return client


def failed(client: ClientProtocol, data: bytes) -> InvalidHandshake:
    """Feed a bad response; check that the handshake failed and return why."""
    events = feed(client, data)
    assert all(isinstance(event, Response) for event in events)
    assert client.state is CLOSED
    assert client.data_to_send() == [b""]
    exc = client.handshake_exc
    assert exc is not None
    # Anything that follows is discarded.
    assert feed(client, server_frame(OP_TEXT, b"late")) == []
    return exc


# --- the request -----------------------------------------------------------------------------


def test_connect_builds_the_request() -> None:
    client = ClientProtocol(parse_uri("ws://example.com/chat?room=1"))
    request = client.connect()
    assert request.method == "GET"
    assert (request.path, request.query) == ("/chat", "room=1")
    assert request.headers.items() == [
        ("Host", "example.com"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", client.key),
        ("Sec-WebSocket-Version", "13"),
        ("User-Agent", f"wavecast/{version}"),
    ]
    assert f"wavecast/{version}" == USER_AGENT
    assert len(base64.b64decode(client.key)) == 16
    assert client.key != ClientProtocol(parse_uri("ws://example.com/")).key


def test_connect_with_every_option() -> None:
    client = ClientProtocol(
        parse_uri("wss://example.com:8443/"),
        origin="https://app.example.com",
        subprotocols=["v2", "v1"],
        extensions=[ReverseClientFactory(), ReverseClientFactory("x-other")],
        additional_headers={"Authorization": "Bearer t", "User-Agent": "custom/1"},
    )
    headers = client.connect().headers
    assert headers["Host"] == "example.com:8443"
    assert headers["Origin"] == "https://app.example.com"
    assert headers["Sec-WebSocket-Extensions"] == "x-reverse; level=1, x-other; level=1"
    assert headers["Sec-WebSocket-Protocol"] == "v2, v1"
    assert headers["Authorization"] == "Bearer t"
    assert headers.get_all("User-Agent") == ["custom/1"]


@pytest.mark.parametrize(
    "additional",
    [Headers([("X-A", "1"), ("X-A", "2")]), [("X-A", "1"), ("X-A", "2")]],
)
def test_additional_headers_keep_repeats(additional: object) -> None:
    client = ClientProtocol(parse_uri("ws://example.com/"), additional_headers=additional, user_agent=None)  # type: ignore[arg-type]
    headers = client.connect().headers
    assert headers.get_all("X-A") == ["1", "2"]
    assert "User-Agent" not in headers


def test_send_request() -> None:
    client = ClientProtocol(parse_uri("ws://example.com/chat"), user_agent=None)
    assert client.state is CONNECTING
    client.send_request(client.connect())
    assert client.state is CONNECTING
    assert client.data_to_send() == [
        b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + client.key.encode() + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ]
    with pytest.raises(LocalProtocolError, match="can't send a handshake request twice"):
        client.send_request(client.connect())


def test_receive_before_sending_the_request() -> None:
    client = ClientProtocol(parse_uri("ws://example.com/"))
    with pytest.raises(LocalProtocolError, match="can't receive a handshake response before sending the request"):
        client.receive_data(b"HTTP/1.1 101 Switching Protocols\r\n")


# --- a valid response ------------------------------------------------------------------------


@pytest.mark.parametrize("chunk", [None, 1, 9])
def test_valid_response(chunk: int | None) -> None:
    client = new_client()
    [response] = feed(client, response_bytes(client.key), chunk=chunk)
    assert isinstance(response, Response)
    assert response.status_code == 101
    assert client.response is response
    assert client.handshake_exc is None
    assert client.state is OPEN
    assert client.subprotocol is None and client.extension is None


def test_frames_after_the_101_in_the_same_packet() -> None:
    client = new_client()
    data = response_bytes(client.key) + server_frame(OP_TEXT, b"hello") + server_frame(OP_PING, b"p")
    events = feed(client, data)
    assert isinstance(events[0], Response)
    assert events[1:] == ["hello", Ping(b"p")]
    assert_frames_sent(client, Frame(0xA, b"p"))


def test_large_frame_after_the_101_in_the_same_packet() -> None:
    client = new_client()
    events = feed(client, response_bytes(client.key) + server_frame(OP_TEXT, b"z" * 10000))
    assert events[1:] == ["z" * 10000]


def test_subprotocol_chosen() -> None:
    client = new_client(subprotocols=["v2", "v1"])
    feed(client, response_bytes(client.key, add=[("Sec-WebSocket-Protocol", "v1")]))
    assert client.state is OPEN
    assert client.subprotocol == "v1"


def test_extension_accepted() -> None:
    client = new_client(extensions=[ReverseClientFactory("x-other"), ReverseClientFactory()])
    feed(client, response_bytes(client.key, add=[("Sec-WebSocket-Extensions", "x-reverse; fast")]))
    assert client.state is OPEN
    assert isinstance(client.extension, Reverse)
    assert (client.extension.name, client.extension.params) == ("x-reverse", [("fast", None)])
    assert feed(client, server_frame(OP_TEXT, b"cba", rsv1=True)) == ["abc"]


def test_header_variants_accepted() -> None:
    client = new_client()
    data = response_bytes(client.key, drop=["Upgrade", "Connection"], add=[("Upgrade", "WebSocket")])
    feed(client, data.replace(b"\r\n\r\n", b"\r\nConnection: keep-alive, upgrade\r\n\r\n"))
    assert client.state is OPEN


# --- bad responses ---------------------------------------------------------------------------


def test_rejection() -> None:
    client = new_client()
    data = response_bytes(client.key, status="403 Forbidden", add=[("Content-Length", "6")], body=b"denied")
    exc = failed(client, data)
    assert isinstance(exc, InvalidStatus)
    assert (exc.status_code, exc.reason, exc.body) == (403, "Forbidden", b"denied")
    assert str(exc) == "server rejected WebSocket connection: HTTP 403 Forbidden"
    assert client.response is not None and client.response.status_code == 403


@pytest.mark.parametrize(
    ("drop", "add", "error", "message"),
    [
        (["Sec-WebSocket-Accept"], [], InvalidHeader, "missing Sec-WebSocket-Accept header"),
        (["Sec-WebSocket-Accept"], [("Sec-WebSocket-Accept", "wrong")], InvalidHeader, "invalid Sec-WebSocket-Accept"),
        (["Upgrade"], [], InvalidUpgrade, "missing Upgrade header"),
        (["Upgrade"], [("Upgrade", "h2c")], InvalidUpgrade, "invalid Upgrade header: 'h2c'"),
        (["Upgrade"], [("Upgrade", "websocket, h2c")], InvalidUpgrade, "invalid Upgrade header"),
        (["Connection"], [], InvalidUpgrade, "missing Connection header"),
        (["Connection"], [("Connection", "close")], InvalidUpgrade, "invalid Connection header: 'close'"),
        ([], [("Sec-WebSocket-Protocol", "v1")], NegotiationError, "server chose the subprotocol v1, which wasn't"),
        ([], [("Sec-WebSocket-Protocol", "a, b")], NegotiationError, "server chose several subprotocols: a, b"),
        ([], [("Sec-WebSocket-Extensions", "x-unknown")], NegotiationError, "the extension x-unknown, which wasn't"),
        ([], [("Sec-WebSocket-Extensions", "x-reverse; bad")], NegotiationError, "bad parameters"),
        ([], [("Sec-WebSocket-Extensions", "x-reverse, x-other")], NegotiationError, "more than one extension"),
        ([], [("Sec-WebSocket-Extensions", "x-reverse; =")], InvalidHeader, "invalid Sec-WebSocket-Extensions"),
    ],
)
def test_invalid_response(drop: list[str], add: list[tuple[str, str]], error: type[Exception], message: str) -> None:
    client = new_client(extensions=[ReverseClientFactory(), ReverseClientFactory("x-other")])
    exc = failed(client, response_bytes(client.key, drop=drop, add=add))
    assert isinstance(exc, error)
    assert message in str(exc)
    assert client.response is not None


def test_malformed_response() -> None:
    client = new_client()
    exc = failed(client, b"HTTP/1.1 abc\r\n\r\n")
    assert str(exc).startswith("invalid HTTP response: ")
    assert client.response is None


def test_response_limits() -> None:
    client = new_client(limits=Limits(max_header_count=3))
    exc = failed(client, response_bytes(client.key, add=[("X-1", "1"), ("X-2", "2")]))
    assert (exc.status, str(exc)) == (431, "more than 3 headers")


# --- EOF -------------------------------------------------------------------------------------


def test_eof_during_handshake() -> None:
    client = new_client()
    feed(client, response_bytes(client.key)[:20])
    client.receive_eof()
    assert client.state is CLOSED
    assert str(client.handshake_exc) == "connection closed during the opening handshake"
    assert client.data_to_send() == [b""]


def test_eof_before_sending_the_request() -> None:
    client = ClientProtocol(parse_uri("ws://example.com/"))
    client.receive_eof()
    assert client.state is CLOSED
    assert client.handshake_exc is None


def test_eof_after_a_failed_handshake_keeps_the_reason() -> None:
    client = new_client()
    exc = failed(client, b"HTTP/1.1 500 Oops\r\n\r\n")
    client.receive_eof()
    assert client.handshake_exc is exc


def test_eof_after_the_handshake() -> None:
    client = open_client()
    client.receive_eof()
    assert client.handshake_exc is None
    assert client.state is CLOSED
