from __future__ import annotations

from collections.abc import Sequence

import pytest

from wavecast.codes import CloseCode
from wavecast.exceptions import (
    InvalidHandshake,
    InvalidHeader,
    InvalidOrigin,
    InvalidUpgrade,
    LocalProtocolError,
    NegotiationError,
)
from wavecast.protocol import (
    CLOSED,
    CONNECTING,
    OPEN,
    Close,
    HandshakePolicy,
    Limits,
    Ping,
    Request,
    Response,
    ServerProtocol,
)
from wavecast.protocol.headers import Headers

from .helpers import (
    OP_CLOSE,
    OP_PONG,
    OP_TEXT,
    RFC_ACCEPT,
    RFC_KEY,
    Frame,
    Reverse,
    ReverseServerFactory,
    assert_frame_sent,
    assert_frames_sent,
    client_frame,
    close_payload,
    feed,
    open_server,
    request_bytes,
)


def receive_request(server: ServerProtocol, data: bytes) -> Request:
    events = feed(server, data)
    assert len(events) == 1 and isinstance(events[0], Request), events
    assert server.request is events[0]
    return events[0]


def handshake(data: bytes, **kwargs: object) -> tuple[ServerProtocol, Response]:
    """Feed a request to a new server, accept it, and return the server and its response."""
    server = ServerProtocol(**kwargs)  # type: ignore[arg-type]
    response = server.accept(receive_request(server, data))
    return server, response


def response_sent(server: ServerProtocol) -> tuple[bytes, bool]:
    out = server.data_to_send()
    eof = out[-1:] == [b""]
    return b"".join(out), eof


# --- a valid handshake -----------------------------------------------------------------------


def test_valid_handshake() -> None:
    server = ServerProtocol()
    assert server.state is CONNECTING and not server.open
    request = receive_request(server, request_bytes())
    assert request.path == "/chat"
    assert request.headers["Sec-WebSocket-Key"] == RFC_KEY
    response = server.accept(request)
    assert response.status_code == 101
    assert response.reason_phrase == "Switching Protocols"
    assert response.headers.items() == [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", RFC_ACCEPT),
    ]
    assert server.handshake_exc is None
    assert server.subprotocol is None and server.extension is None
    server.send_response(response)
    assert server.state is OPEN and server.open
    assert server.data_to_send() == [
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"
    ]


@pytest.mark.parametrize("chunk", [1, 10])
def test_request_in_pieces(chunk: int) -> None:
    server = ServerProtocol()
    data = request_bytes()
    events = feed(server, data, chunk=chunk)
    assert [type(event) for event in events] == [Request]


@pytest.mark.parametrize(
    "add",
    [
        [("Upgrade", "WebSocket")],
        [("Connection", "keep-alive, Upgrade")],
        [("Connection", "keep-alive"), ("Connection", "upgrade")],
        [("Upgrade", "h2c, websocket")],
    ],
)
def test_header_variants_accepted(add: list[tuple[str, str]]) -> None:
    names = {name for name, _ in add}
    _, response = handshake(request_bytes(drop=list(names), add=add))
    assert response.status_code == 101


def test_frames_in_the_request_packet_are_parsed_after_the_response() -> None:
    server = ServerProtocol()
    frames = client_frame(OP_TEXT, b"hello") + client_frame(0x9, b"p")
    request = receive_request(server, request_bytes() + frames[:3])
    assert feed(server, frames[3:]) == []
    server.send_response(server.accept(request))
    assert server.events_received() == ["hello", Ping(b"p")]
    out = server.data_to_send()
    assert out[0].startswith(b"HTTP/1.1 101 ")
    assert out[1:] == [b"\x8a\x01p"]


def test_frames_after_a_request_may_fail_the_connection() -> None:
    server = ServerProtocol()
    request = receive_request(server, request_bytes() + b"\x81\x05hello")
    server.send_response(server.accept(request))
    assert server.protocol_error is not None
    assert server.protocol_error.close_code == CloseCode.PROTOCOL_ERROR


def test_closing_handshake_after_opening() -> None:
    server = open_server()
    assert feed(server, client_frame(OP_CLOSE, close_payload(1000))) == [Close(1000)]
    assert_frame_sent(server, OP_CLOSE, close_payload(1000), eof=True)


# --- bad requests ----------------------------------------------------------------------------


def rejected(data: bytes, **kwargs: object) -> tuple[ServerProtocol, Response]:
    server, response = handshake(data, **kwargs)
    assert response.status_code != 101
    assert server.handshake_exc is not None
    assert response.body == f"Failed to open a WebSocket connection: {server.handshake_exc}.\n".encode()
    assert response.headers["Connection"] == "close"
    server.send_response(response)
    assert server.state is CLOSED
    raw, eof = response_sent(server)
    assert raw == response.serialize()
    assert eof
    return server, response


def test_method_not_allowed() -> None:
    server, response = rejected(request_bytes(method="POST"))
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET"
    assert str(server.handshake_exc) == "method POST not allowed, expected GET"


def test_http_1_0_not_supported() -> None:
    server, response = rejected(request_bytes(version="1.0"))
    assert response.status_code == 505
    assert str(server.handshake_exc) == "HTTP/1.0 not supported, expected HTTP/1.1"


def test_missing_host() -> None:
    server, response = rejected(request_bytes(drop=["Host"]))
    assert response.status_code == 400
    assert isinstance(server.handshake_exc, InvalidHeader)
    assert str(server.handshake_exc) == "missing Host header"


@pytest.mark.parametrize(
    ("drop", "add", "message"),
    [
        (["Upgrade"], [], "missing Upgrade header"),
        (["Upgrade"], [("Upgrade", "h2c")], "invalid Upgrade header: 'h2c'"),
        (["Connection"], [], "missing Connection header"),
        (["Connection"], [("Connection", "keep-alive")], "invalid Connection header: 'keep-alive'"),
        (["Sec-WebSocket-Version"], [], "missing Sec-WebSocket-Version header"),
        (["Sec-WebSocket-Version"], [("Sec-WebSocket-Version", "8")], "invalid Sec-WebSocket-Version header: '8'"),
        ([], [("Sec-WebSocket-Version", "13")], "invalid Sec-WebSocket-Version header: '13, 13'"),
    ],
)
def test_upgrade_required(drop: list[str], add: list[tuple[str, str]], message: str) -> None:
    server, response = rejected(request_bytes(drop=drop, add=add))
    assert response.status_code == 426
    assert response.reason_phrase == "Upgrade Required"
    assert response.headers["Upgrade"] == "websocket"
    assert response.headers["Sec-WebSocket-Version"] == "13"
    assert isinstance(server.handshake_exc, InvalidUpgrade)
    assert str(server.handshake_exc) == message


@pytest.mark.parametrize(
    ("drop", "add", "message"),
    [
        (["Sec-WebSocket-Key"], [], "missing Sec-WebSocket-Key header"),
        (["Sec-WebSocket-Key"], [("Sec-WebSocket-Key", "c2hvcnQ=")], "invalid Sec-WebSocket-Key header: 'c2hvcnQ='"),
        (["Sec-WebSocket-Key"], [("Sec-WebSocket-Key", "not base64!")], "invalid Sec-WebSocket-Key header"),
        ([], [("Sec-WebSocket-Key", RFC_KEY)], "invalid Sec-WebSocket-Key header"),
        ([], [("Origin", "http://server.example.com"), ("Origin", "http://x")], "invalid Origin header"),
        (["Upgrade"], [("Upgrade", "web socket")], "invalid Upgrade header: 'web socket'"),
    ],
)
def test_bad_request(drop: list[str], add: list[tuple[str, str]], message: str) -> None:
    server, response = rejected(request_bytes(drop=drop, add=add))
    assert response.status_code == 400
    assert str(server.handshake_exc).startswith(message)


# --- origins ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "origin", "origins", "allowed"),
    [
        ("server.example.com", None, None, True),
        ("server.example.com", "http://server.example.com", None, True),
        ("server.example.com", "https://server.example.com", None, True),
        ("server.example.com", "https://Server.Example.com:443", None, True),
        ("server.example.com:8000", "http://server.example.com:8000", None, True),
        ("server.example.com:8000", "http://server.example.com", None, False),
        ("server.example.com", "http://evil.example.com", None, False),
        ("server.example.com", "null", None, False),
        ("server.example.com", "http://evil.com", ["https://app.example.com"], False),
        ("server.example.com", "https://app.example.com", ["https://app.example.com"], True),
        ("server.example.com", "http://server.example.com", ["https://app.example.com"], False),
        ("server.example.com", "null", ["*"], True),
        ("server.example.com", "https://anything.test", ["*"], True),
        ("server.example.com", "https://a.example.com", ["https://*.example.com"], True),
        ("server.example.com", "https://a.b.example.com", ["https://*.example.com"], True),
        ("server.example.com", "http://a.example.com", ["https://*.example.com"], False),
        ("server.example.com", "https://example.com", ["https://*.example.com"], False),
        ("server.example.com", "https://evilexample.com", ["https://*.example.com"], False),
        ("server.example.com", None, ["https://app.example.com"], True),
    ],
)
def test_origin_policy(host: str, origin: str | None, origins: Sequence[str] | None, allowed: bool) -> None:
    add = [("Host", host)] + ([("Origin", origin)] if origin is not None else [])
    server, response = handshake(request_bytes(drop=["Host"], add=add), origins=origins)
    if allowed:
        assert response.status_code == 101
    else:
        assert response.status_code == 403
        assert isinstance(server.handshake_exc, InvalidOrigin)
        assert str(server.handshake_exc) == f"invalid Origin header: {origin!r}"


@pytest.mark.parametrize(
    "origin", ["http://ex]ample.com", "http://[::1", "http://[zz]", "http://server.example.com:99999", "x"]
)
@pytest.mark.parametrize("origins", [None, ["https://app.example.com"], ["https://*.example.com"]])
def test_malformed_origin_gets_403(origin: str, origins: Sequence[str] | None) -> None:
    add = [("Host", "server.example.com"), ("Origin", origin)]
    server, response = handshake(request_bytes(drop=["Host"], add=add), origins=origins)
    assert response.status_code == 403
    assert isinstance(server.handshake_exc, InvalidOrigin)
    assert response.body == f"Failed to open a WebSocket connection: invalid Origin header: {origin!r}.\n".encode()
    server.send_response(response)
    data, eof = response_sent(server)
    assert data.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert eof


# --- subprotocols ----------------------------------------------------------------------------


def offer(*values: str) -> bytes:
    return request_bytes(add=[("Sec-WebSocket-Protocol", value) for value in values])


def test_subprotocol_by_server_preference() -> None:
    server, response = handshake(offer("chat, superchat", "v2.json"), subprotocols=["v2.json", "superchat"])
    assert response.headers["Sec-WebSocket-Protocol"] == "v2.json"
    assert server.subprotocol == "v2.json"


def test_a_policy_shared_by_servers_negotiates_as_its_arguments_do() -> None:
    policy = HandshakePolicy(subprotocols=["v2.json", "superchat"])
    first, response = handshake(offer("superchat"), policy=policy)
    second, _ = handshake(offer("v2.json"), policy=policy)
    assert response.headers["Sec-WebSocket-Protocol"] == "superchat"
    assert (first.subprotocol, second.subprotocol) == ("superchat", "v2.json")
    assert first.policy is second.policy is policy
    with pytest.raises(TypeError, match="not both"):
        ServerProtocol(policy=policy, subprotocols=["chat"])


def test_subprotocol_names_are_case_sensitive() -> None:
    _, response = handshake(offer("Chat"), subprotocols=["chat"])
    assert response.status_code == 400


def test_no_common_subprotocol() -> None:
    server, response = rejected(offer("chat"), subprotocols=["superchat", "json"])
    assert response.status_code == 400
    assert isinstance(server.handshake_exc, NegotiationError)
    assert str(server.handshake_exc) == "no supported subprotocol: client offered chat; server speaks superchat, json"


@pytest.mark.parametrize(("data", "subprotocols"), [(request_bytes(), ["chat"]), (offer("chat"), None)])
def test_no_subprotocol_offered_or_spoken(data: bytes, subprotocols: list[str] | None) -> None:
    server, response = handshake(data, subprotocols=subprotocols)
    assert response.status_code == 101
    assert "Sec-WebSocket-Protocol" not in response.headers
    assert server.subprotocol is None


def test_select_subprotocol() -> None:
    seen: list[Sequence[str]] = []

    def select(offered: Sequence[str]) -> str | None:
        seen.append(offered)
        return offered[-1] if offered else None

    _, response = handshake(offer("a, b", "c"), select_subprotocol=select, subprotocols=["a"])
    assert seen == [["a", "b", "c"]]
    assert response.headers["Sec-WebSocket-Protocol"] == "c"
    _, response = handshake(request_bytes(), select_subprotocol=select)
    assert "Sec-WebSocket-Protocol" not in response.headers


def test_select_subprotocol_must_pick_an_offer() -> None:
    server = ServerProtocol(select_subprotocol=lambda offered: "other")
    request = receive_request(server, offer("chat"))
    with pytest.raises(LocalProtocolError, match="select_subprotocol returned 'other', which the client didn't offer"):
        server.accept(request)


# --- extensions ------------------------------------------------------------------------------


def offer_extensions(*values: str) -> bytes:
    return request_bytes(add=[("Sec-WebSocket-Extensions", value) for value in values])


def test_extension_accepted() -> None:
    factory = ReverseServerFactory()
    server, response = handshake(offer_extensions("x-reverse; level=1; fast"), extensions=[factory])
    assert response.headers["Sec-WebSocket-Extensions"] == "x-reverse; ok"
    assert factory.offers == [[("level", "1"), ("fast", None)]]
    assert isinstance(server.extension, Reverse)
    assert server.extension.params == [("level", "1"), ("fast", None)]


def test_extension_offers_in_client_order() -> None:
    factory = ReverseServerFactory()
    other = ReverseServerFactory("x-other")
    header = "x-unknown, x-reverse; decline, x-other, x-reverse; second, x-reverse; third"
    server, response = handshake(offer_extensions(header), extensions=[factory, other])
    # The declined offer is skipped, and only the first accepted extension is used.
    assert factory.offers == [[("decline", None)], [("second", None)]]
    assert other.offers == [[]]
    assert response.headers["Sec-WebSocket-Extensions"] == "x-other; ok"
    assert isinstance(server.extension, Reverse) and server.extension.params == []


def test_extension_declined() -> None:
    server, response = handshake(offer_extensions("x-reverse; decline"), extensions=[ReverseServerFactory()])
    assert response.status_code == 101
    assert "Sec-WebSocket-Extensions" not in response.headers
    assert server.extension is None


@pytest.mark.parametrize(("data", "factories"), [(request_bytes(), True), (offer_extensions("x-reverse"), False)])
def test_extension_not_offered_or_not_supported(data: bytes, factories: bool) -> None:
    server, response = handshake(data, extensions=[ReverseServerFactory()] if factories else [])
    assert "Sec-WebSocket-Extensions" not in response.headers
    assert server.extension is None


def test_invalid_extension_header() -> None:
    _, response = rejected(offer_extensions("x-reverse; =1"), extensions=[ReverseServerFactory()])
    assert response.status_code == 400


def test_extension_used_after_the_handshake() -> None:
    server = open_server(extensions=[ReverseServerFactory()])
    assert server.extension is None
    server = ServerProtocol(extensions=[ReverseServerFactory()])
    server.send_response(server.accept(receive_request(server, offer_extensions("x-reverse"))))
    server.data_to_send()
    assert feed(server, client_frame(OP_TEXT, b"olleh", rsv1=True)) == ["hello"]
    server.send_text("abc")
    assert_frames_sent(server, Frame(OP_TEXT, b"cba", rsv1=True))


# --- malformed requests and limits -----------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "limits", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost x\r\n\r\n", Limits(), 400),
        (b"NOT HTTP AT ALL\r\n\r\n", Limits(), 400),
        (request_bytes(add=[(f"X-{i}", "v") for i in range(10)]), Limits(max_header_count=10), 431),
        (request_bytes(add=[("X", "v" * 200)]), Limits(max_header_line=100), 431),
        (request_bytes(target="/" + "a" * 200), Limits(max_header_line=100), 414),
        (request_bytes([("Content-Length", "11")], method="POST", body=b"x" * 11), Limits(max_body_size=10), 413),
    ],
)
def test_invalid_http_is_answered(data: bytes, limits: Limits, status: int) -> None:
    server = ServerProtocol(limits=limits)
    assert feed(server, data) == []
    exc = server.handshake_exc
    assert isinstance(exc, InvalidHandshake)
    assert exc.status == status
    raw, eof = response_sent(server)
    assert raw.startswith(f"HTTP/1.1 {status} ".encode())
    assert raw.endswith(f"\r\n\r\n{exc}\n".encode())
    assert b"Connection: close\r\n" in raw
    assert eof
    assert server.state is CLOSED
    # What follows is ignored.
    assert feed(server, request_bytes()) == []
    assert server.data_to_send() == []


def test_limits_disabled() -> None:
    limits = Limits(max_header_count=None, max_header_line=None)
    _, response = handshake(request_bytes(add=[(f"X-{i}", "v" * 9000) for i in range(200)]), limits=limits)
    assert response.status_code == 101


# --- plain HTTP and keep-alive ---------------------------------------------------------------

PLAIN = [("Host", "server.example.com")]


def test_reject_builds_a_plain_response() -> None:
    server = ServerProtocol()
    response = server.reject(200, "ok\n")
    assert (response.status_code, response.reason_phrase, response.body) == (200, "OK", b"ok\n")
    assert response.headers.items() == [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", "3")]
    response = server.reject(599, keep_alive=False)
    assert (response.reason_phrase, response.body, response.headers["Connection"]) == ("Unknown", b"", "close")


def test_keep_alive_serves_pipelined_requests() -> None:
    server = ServerProtocol()
    data = request_bytes(PLAIN, target="/health") + request_bytes(PLAIN, target="/ready") + request_bytes()
    first = receive_request(server, data + client_frame(OP_TEXT, b"hi"))
    assert first.path == "/health" and first.keep_alive
    server.send_response(server.reject(200, "ok"))
    assert server.state is CONNECTING
    raw, eof = response_sent(server)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and not eof
    [second] = server.events_received()
    assert isinstance(second, Request) and second.path == "/ready"
    server.send_response(server.reject(204))
    [third] = server.events_received()
    assert isinstance(third, Request) and third.path == "/chat"
    server.send_response(server.accept(third))
    assert server.state is OPEN
    assert server.events_received() == ["hi"]


def test_keep_alive_with_requests_in_separate_packets() -> None:
    server = ServerProtocol()
    receive_request(server, request_bytes(PLAIN, target="/a"))
    server.send_response(server.reject(200, "a"))
    server.data_to_send()
    assert receive_request(server, request_bytes(PLAIN, target="/b")).path == "/b"


def test_requests_before_the_response_wait_for_it() -> None:
    server = ServerProtocol()
    receive_request(server, request_bytes(PLAIN, target="/a"))
    data = request_bytes(PLAIN, target="/b")
    assert feed(server, data[:10]) == []
    assert feed(server, data[10:]) == []
    server.send_response(server.reject(200))
    [request] = server.events_received()
    assert isinstance(request, Request) and request.path == "/b"


@pytest.mark.parametrize(
    ("data", "keep_alive"),
    [
        (request_bytes(PLAIN), False),
        (request_bytes([*PLAIN, ("Connection", "close")]), True),
        (request_bytes(PLAIN, version="1.0"), True),
    ],
)
def test_no_keep_alive(data: bytes, keep_alive: bool) -> None:
    server = ServerProtocol()
    receive_request(server, data + request_bytes(PLAIN))
    server.send_response(server.reject(200, keep_alive=keep_alive))
    raw, eof = response_sent(server)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert eof
    assert server.state is CLOSED
    assert server.events_received() == []


def test_rejected_handshake_is_not_kept_alive() -> None:
    server = ServerProtocol()
    request = receive_request(server, request_bytes(drop=["Sec-WebSocket-Key"]) + request_bytes())
    response = server.accept(request)
    del response.headers["Connection"]
    server.send_response(response)
    assert server.state is CLOSED


# --- misuse ----------------------------------------------------------------------------------


def test_send_response_before_a_request() -> None:
    server = ServerProtocol()
    with pytest.raises(LocalProtocolError, match=r"^can't send a handshake response when state is CONNECTING$"):
        server.send_response(server.reject(200))


def test_send_response_when_open() -> None:
    server = open_server()
    with pytest.raises(LocalProtocolError, match=r"^can't send a handshake response when state is OPEN$"):
        server.send_response(server.reject(200))


def test_accept_after_a_failed_handshake() -> None:
    server = ServerProtocol()
    request = receive_request(server, request_bytes(drop=["Host"]))
    server.accept(request)
    ok = Response(status_code=101, reason_phrase="Switching Protocols", headers=request.headers)
    with pytest.raises(LocalProtocolError, match="can't accept a handshake that failed"):
        server.send_response(ok)


def test_eof_during_handshake() -> None:
    server = ServerProtocol()
    feed(server, request_bytes()[:10])
    server.receive_eof()
    assert server.state is CLOSED
    assert server.data_to_send() == [b""]
    assert server.close_code == CloseCode.ABNORMAL_CLOSURE


def test_pong_follows_the_101() -> None:
    server = ServerProtocol()
    request = receive_request(server, request_bytes() + client_frame(0x9, b"x"))
    server.send_response(server.accept(request))
    out = server.data_to_send()
    assert out[0].startswith(b"HTTP/1.1 101 ")
    assert out[1:] == [bytes([0x80 | OP_PONG, 1]) + b"x"]


# --- streamed responses --------------------------------------------------------------------


def streaming(data: bytes) -> ServerProtocol:
    server = ServerProtocol()
    receive_request(server, data)
    server.send_stream_head(Response(status_code=200, reason_phrase="OK", headers=Headers([("Content-Type", "x/y")])))
    return server


STREAM_REQUEST = request_bytes([("Content-Length", "2")], method="POST", body=b"{}")


def test_stream_in_chunks_then_close() -> None:
    server = streaming(STREAM_REQUEST)
    assert server.streaming
    head, eof = response_sent(server)
    assert head == b"HTTP/1.1 200 OK\r\nContent-Type: x/y\r\nTransfer-Encoding: chunked\r\n\r\n" and not eof
    server.send_body(b"hello\n")
    server.send_body(b"")  # an empty chunk would end the body: nothing goes out
    server.send_body(b"x" * 300)
    assert response_sent(server) == (b"6\r\nhello\n\r\n12c\r\n" + b"x" * 300 + b"\r\n", False)
    server.end_stream()
    assert response_sent(server) == (b"0\r\n\r\n", True)
    assert server.state is CLOSED and not server.streaming
    server.end_stream()  # safe twice
    assert server.data_to_send() == []


def test_stream_to_http_1_0_ends_by_closing() -> None:
    server = streaming(request_bytes([("Content-Length", "2")], method="POST", body=b"{}", version="1.0"))
    head, _ = response_sent(server)
    assert b"Connection: close\r\n" in head and b"Transfer-Encoding" not in head
    server.send_body(b"raw")
    server.end_stream()
    assert response_sent(server) == (b"raw", True)


def test_stream_ignores_input_and_drops_output_once_the_client_left() -> None:
    server = streaming(STREAM_REQUEST)
    server.data_to_send()
    assert feed(server, request_bytes()) == []
    server.receive_eof()
    assert not server.streaming
    server.send_body(b"late")
    server.end_stream()
    assert server.data_to_send() == [b""]


def test_stream_misuse() -> None:
    server = ServerProtocol()
    with pytest.raises(LocalProtocolError, match="can't stream a response when state is CONNECTING"):
        server.send_stream_head(Response(status_code=200, reason_phrase="OK", headers=Headers()))
    with pytest.raises(LocalProtocolError, match="can't send a body piece without a streamed response"):
        server.send_body(b"x")
    with pytest.raises(LocalProtocolError, match="can't end a stream that wasn't started"):
        server.end_stream()
    server = streaming(STREAM_REQUEST)
    with pytest.raises(LocalProtocolError, match="can't stream a second response"):
        server.send_stream_head(Response(status_code=200, reason_phrase="OK", headers=Headers()))


# --- the fast path for simple requests gives the same answers ----------------------------------


def answer(data: bytes, pieces: int) -> tuple[bytes, bool, str | None]:
    """What a server sends for ``data`` fed whole (``pieces=1``, the fast path when the head is
    simple) or first byte apart (llhttp's path), and why it refused."""
    server = ServerProtocol(origins=["https://example.com"], subprotocols=["chat"])
    chunks = [data] if pieces == 1 else [data[:1], data[1:]]
    for chunk in chunks:
        server.receive_data(chunk)
    events = server.events_received()
    if events:
        server.send_response(server.accept(events[0]))  # type: ignore[arg-type]
    out, eof = response_sent(server)
    return out, eof, None if server.handshake_exc is None else str(server.handshake_exc)


@pytest.mark.parametrize(
    "data",
    [
        request_bytes(),
        request_bytes(add=[("Origin", "https://example.com"), ("Sec-WebSocket-Protocol", "x, chat")]),
        request_bytes(add=[("Origin", "https://evil.example")]),
        request_bytes(add=[("Origin", "https://example.com"), ("Origin", "https://example.com")]),
        request_bytes(add=[("Sec-WebSocket-Protocol", "x")]),
        request_bytes(drop=["Host"]),
        request_bytes(drop=["Upgrade"]),
        request_bytes(drop=["Connection"]),
        request_bytes(drop=["Sec-WebSocket-Key"]),
        request_bytes(drop=["Sec-WebSocket-Version"]),
        request_bytes(add=[("Sec-WebSocket-Key", RFC_KEY)]),
        request_bytes(add=[("Sec-WebSocket-Version", "8")]),
        request_bytes(add=[("Upgrade", "h2c")]),
        request_bytes(add=[("Connection", "keep-alive")]),
        request_bytes(headers=[("Host", "x"), ("Upgrade", "WebSocket"), ("Connection", "keep-alive, Upgrade")]),
        request_bytes(headers=[("Host", "x"), ("Upgrade", "h2c, websocket"), ("Connection", "Upgrade")]),
        request_bytes(headers=[("Host", "x"), ("Upgrade", "web socket"), ("Connection", "Upgrade")]),
        request_bytes(headers=[("Host", "x"), ("Upgrade", "websocket"), ("Connection", "up grade")]),
        request_bytes(
            headers=[("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Key", "short")]
        ),
        request_bytes(method="POST"),
        request_bytes(version="1.0"),
        request_bytes(target="/a b"),
        b"GET /chat HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
    ],
)
def test_a_simple_request_gets_the_answer_llhttp_would_give_it(data: bytes) -> None:
    assert answer(data, 1) == answer(data, 2)
