"""ConnectionOptions: one definition of the settings that serve() and connect() share."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from wavecast import Limits
from wavecast.asyncio import connect, serve
from wavecast.asyncio._options import DEFAULT_OPTIONS, ConnectionOptions
from wavecast.protocol.deflate import ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory

from ..support.servers import echo

FIELDS = [field.name for field in dataclasses.fields(ConnectionOptions)]


@pytest.mark.parametrize("function", [serve, connect])
def test_defaults_are_those_of_serve_and_connect(function: Any) -> None:
    parameters = inspect.signature(function).parameters
    shared = [name for name in FIELDS if name in parameters]
    assert {name: parameters[name].default for name in shared} == {
        name: getattr(DEFAULT_OPTIONS, name) for name in shared
    }
    # connect() has no write_delay (a client sends little), and no socket_send_buffer.
    assert set(FIELDS) - set(shared) == ({"write_delay", "socket_send_buffer"} if function is connect else set())


def test_serve_builds_the_options_once_and_shares_them_with_its_connections() -> None:
    values: dict[str, Any] = dict(
        compression=None,
        open_timeout=1.5,
        ping_interval=None,
        ping_timeout=3,
        close_timeout=4,
        max_queue=None,
        write_limit=1000,
        write_delay=0.01,
        socket_send_buffer=65536,
    )
    server = serve(echo, limits=Limits(max_header_count=32), **values).server
    assert server.options == ConnectionOptions(limits=Limits(max_header_count=32), **values)
    assert server.extensions == ()


def test_connect_builds_the_options_once() -> None:
    client = connect("ws://127.0.0.1:1/", max_size=4096, ping_interval=None, max_queue=2, write_limit=10)
    assert client.options == ConnectionOptions(
        limits=Limits(max_message_size=4096, max_frame_size=4096), ping_interval=None, max_queue=2, write_limit=10
    )


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT_OPTIONS.write_limit = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("compression", "gzip", "unsupported compression: gzip"),
        ("open_timeout", -1, "open_timeout must be a non-negative number or None, got -1"),
        ("ping_interval", "20", "ping_interval must be a non-negative number or None, got '20'"),
        ("ping_timeout", True, "ping_timeout must be a non-negative number or None, got True"),
        ("close_timeout", -0.5, "close_timeout must be a non-negative number or None, got -0.5"),
        ("write_delay", -0.001, "write_delay must be a non-negative number or None, got -0.001"),
        ("max_queue", -1, "max_queue must be a non-negative integer or None, got -1"),
        ("max_queue", 1.5, "max_queue must be a non-negative integer or None, got 1.5"),
        ("write_limit", None, "write_limit must be a non-negative integer, got None"),
        ("write_limit", -1, "write_limit must be a non-negative integer, got -1"),
        ("socket_send_buffer", 0, "socket_send_buffer must be a positive integer or None, got 0"),
        ("socket_send_buffer", False, "socket_send_buffer must be a positive integer or None, got False"),
    ],
)
def test_a_bad_value_is_refused_by_name(name: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        ConnectionOptions(**{name: value})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("compression", None),
        ("open_timeout", 0),
        ("ping_interval", 0.5),
        ("ping_timeout", None),
        ("close_timeout", None),
        ("write_delay", 0),
        ("max_queue", 0),
        ("max_queue", None),
        ("write_limit", 0),
        ("socket_send_buffer", 1),
    ],
)
def test_values_at_the_edge_are_taken(name: str, value: Any) -> None:
    assert getattr(ConnectionOptions(**{name: value}), name) == value


def test_serve_and_connect_refuse_a_bad_option() -> None:
    with pytest.raises(ValueError, match="ping_interval must be"):
        serve(echo, ping_interval=-1)
    with pytest.raises(ValueError, match="write_limit must be"):
        connect("ws://127.0.0.1:1/", write_limit=-1)


def test_with_compression_adds_deflate_once() -> None:
    server = ServerPerMessageDeflateFactory
    assert [type(f) for f in DEFAULT_OPTIONS.with_compression((), server)] == [server]
    custom = ServerPerMessageDeflateFactory(server_no_context_takeover=True)
    assert DEFAULT_OPTIONS.with_compression([custom], server) == (custom,)
    off = ConnectionOptions(compression=None)
    assert off.with_compression([custom], server) == (custom,)
    assert off.with_compression((), ClientPerMessageDeflateFactory) == ()
    assert [type(f) for f in DEFAULT_OPTIONS.with_compression((), ClientPerMessageDeflateFactory)] == [
        ClientPerMessageDeflateFactory
    ]
