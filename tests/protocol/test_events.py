from __future__ import annotations

import dataclasses

import pytest

from wavecast.codes import CloseCode
from wavecast.protocol import Close, Headers, Ping, Pong, Request, Response


def test_request_defaults() -> None:
    request = Request(path="/chat", headers=Headers())
    assert (request.query, request.method, request.http_version, request.body, request.keep_alive) == (
        "",
        "GET",
        "1.1",
        b"",
        True,
    )
    assert request.target == "/chat"
    assert request.query_params == {}


def test_request_target_and_query_params() -> None:
    request = Request(path="/chat", query="room=a%20b&flag&room=c&empty=", headers=Headers())
    assert request.target == "/chat?room=a%20b&flag&room=c&empty="
    assert request.query_params == {"room": "c", "flag": "", "empty": ""}


def test_request_serialize() -> None:
    request = Request(path="/chat", query="x=1", headers=Headers([("Host", "example.com")]))
    assert request.serialize() == b"GET /chat?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n"
    request = Request(method="POST", path="/", headers=Headers(), http_version="1.0")
    assert request.serialize() == b"POST / HTTP/1.0\r\n\r\n"


def test_response_serialize() -> None:
    response = Response(status_code=404, reason_phrase="Not Found", headers=Headers([("A", "1")]), body=b"nope")
    assert response.serialize() == b"HTTP/1.1 404 Not Found\r\nA: 1\r\n\r\nnope"
    response = Response(status_code=101, reason_phrase="Switching Protocols", headers=Headers())
    assert response.serialize() == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"


def test_control_events() -> None:
    assert Ping() == Ping(b"") and Pong() == Pong(b"")
    assert Ping(b"x") != Pong(b"x")
    assert Close(1000) == Close(1000, "")
    assert Close(CloseCode.NO_STATUS_RCVD).reason == ""


@pytest.mark.parametrize(
    "event",
    [
        Ping(b"x"),
        Pong(b"x"),
        Close(1000, "bye"),
        Request(path="/", headers=Headers()),
        Response(status_code=200, reason_phrase="OK", headers=Headers()),
    ],
)
def test_events_are_frozen_with_slots(event: object) -> None:
    field = dataclasses.fields(event)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(event, field, None)
    assert not hasattr(event, "__dict__")


def test_request_and_response_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Request("/", Headers())  # type: ignore[misc]
    with pytest.raises(TypeError):
        Response(200, "OK", Headers())  # type: ignore[misc]
