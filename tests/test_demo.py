"""The echo demo's routes (``wavecast demo``)."""

from __future__ import annotations

from wavecast.demo import process_request
from wavecast.protocol import Headers, Request


def upgrade(*connection: str) -> Request:
    headers = Headers([("Host", "127.0.0.1"), *(("Connection", value) for value in connection)])
    return Request(path="/echo", headers=headers)


def test_upgrade_to_echo_is_let_through() -> None:
    assert process_request(None, upgrade("Upgrade")) is None  # type: ignore[arg-type]


def test_connection_header_sent_twice() -> None:
    # Headers.get() raised ValueError when a client repeated the header.
    assert process_request(None, upgrade("keep-alive", "Upgrade")) is None  # type: ignore[arg-type]


def test_page_and_unknown_path() -> None:
    page = process_request(None, Request(path="/", headers=Headers()))  # type: ignore[arg-type]
    assert page is not None and page.status_code == 200
    missing = process_request(None, Request(path="/nope", headers=Headers()))  # type: ignore[arg-type]
    assert missing is not None and missing.status_code == 404
