"""The standalone server's plain HTTP routes: health, readiness, the demo's pages and tokens."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import jwt
import pytest

from wavecast.asyncio import connect
from wavecast.exceptions import ConfigError, InvalidStatus
from wavecast.server.app import App, _LoginThrottle
from wavecast.server.serve import build_node, shutdown, start_server

from ..support.config import make_config
from ..support.http import http
from ..support.peers import handshake_request, open_raw_client
from ..support.servers import StartWavecast
from ..support.timing import MS
from ..support.tls import Certificates
from ..support.tokens import SECRET, make_token


async def test_health_and_ready(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    health = await running.get("/health")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    ready = await running.get("/ready")
    assert (ready.status, ready.json()) == (200, {"status": "ready"})
    assert ready.headers["Content-Type"] == "application/json"


async def test_ready_is_503_while_stopping(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    running.app.stopping = True
    ready = await running.get("/ready")
    assert (ready.status, ready.json()) == (503, {"status": "unavailable"})
    # Alive all the same.
    assert (await running.get("/health")).status == 200
    # New WebSocket connections are turned away, to another instance.
    with pytest.raises(InvalidStatus) as raised:
        await connect(running.ws_url, open_timeout=5000 * MS, compression=None)
    assert raised.value.status_code == 503


async def test_shutdown_stops_accepting(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    port = running.port
    running.stopped = True
    await shutdown(running.server, running.app, 1000 * MS)
    assert not running.node.started
    with pytest.raises(OSError):
        await connect(f"ws://127.0.0.1:{port}/connection/websocket", open_timeout=2000 * MS)


async def test_head_has_no_body(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
    try:
        # Two requests on one connection: the first answer must end with its head.
        writer.write(
            b"HEAD /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            b"GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        async with asyncio.timeout(5000 * MS):
            data = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head, ready = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Length: 16" in head  # as for GET
    assert ready.startswith(b"HTTP/1.1 200 OK\r\n")
    assert ready.endswith(b'\r\n\r\n{"status": "ready"}')


async def test_websocket_path_over_plain_http(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    answer = await running.get("/connection/websocket")
    assert answer.status == 426
    assert answer.headers["Upgrade"] == "websocket"


async def test_unknown_path(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    assert (await running.get("/nope")).status == 404


async def test_demo_disabled(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(demo={"enabled": False})
    for path in ("/", "/demo/token?user=bob", "/static/chat/chat.js", "/static/vendor/centrifuge.js"):
        assert (await running.get(path)).status == 404, path


async def test_demo_pages(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(demo={"enabled": True})
    index = await running.get("/")
    assert index.status == 200
    assert index.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"/static/vendor/centrifuge.js" in index.body
    script = await running.get("/static/chat/chat.js")
    assert script.status == 200
    assert script.headers["Content-Type"] in ("text/javascript; charset=utf-8", "application/javascript; charset=utf-8")
    css = await running.get("/static/chat/chat.css")
    assert css.headers["Content-Type"] == "text/css; charset=utf-8"
    for path in ("/static/", "/static/chat", "/static/chat/nope.js", "/static/../cli.py", "/static/chat/../../cli.py"):
        assert (await running.get(path)).status == 404, path


@pytest.mark.parametrize(
    ("demo", "admin", "status"),
    [(True, False, 200), (False, True, 200), (True, True, 200), (False, False, 404)],
)
async def test_favicon(start_wavecast: StartWavecast, demo: bool, admin: bool, status: int) -> None:
    # Browsers ask every page's origin for it: it was a 404 on the demo and the admin page.
    running = await start_wavecast(demo={"enabled": demo}, admin={"enabled": admin})
    icon = await running.get("/favicon.ico")
    assert icon.status == status
    if status == 200:
        assert icon.headers["Content-Type"] == "image/svg+xml"
        assert icon.body.startswith(b"<svg ")
        # No password: the browser doesn't send the admin page's login with it.
        assert "WWW-Authenticate" not in icon.headers


async def test_demo_static_name_too_long_is_404(
    start_wavecast: StartWavecast, caplog: pytest.LogCaptureFixture
) -> None:
    # open() raised OSError (ENAMETOOLONG) for a name over 255 bytes: a logged traceback and a 500.
    running = await start_wavecast(demo={"enabled": True})
    for path in (f"/static/{'a' * 300}", f"/static/chat/{'b' * 300}.js"):
        assert (await running.get(path)).status == 404, path
    assert [record for record in caplog.records if record.levelname == "ERROR"] == []


async def test_connection_header_sent_twice(start_wavecast: StartWavecast, caplog: pytest.LogCaptureFixture) -> None:
    # Headers.get() raised ValueError on a repeated Connection header: a traceback and a 500.
    running = await start_wavecast()
    with await open_raw_client(running.port) as raw:
        request = handshake_request(running.port, "/connection/websocket")
        await raw.send(
            request.replace(b"Connection: Upgrade\r\n", b"Connection: keep-alive\r\nConnection: Upgrade\r\n")
        )
        async with asyncio.timeout(2000 * MS):
            assert (await raw.read_head()).startswith(b"HTTP/1.1 101 ")
    answer = await running.get("/health", headers={"Connection": "keep-alive"})
    assert answer.status == 200
    assert [record for record in caplog.records if record.levelname == "ERROR"] == []


async def test_demo_token(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(demo={"enabled": True})
    answer = await running.get("/demo/token?user=Ada%20L.")
    assert answer.status == 200
    claims = jwt.decode(answer.json()["token"], SECRET, algorithms=["HS256"])
    assert claims["sub"] == "Ada L."
    assert claims["info"] == {"name": "Ada L."}
    assert "exp" in claims
    for query in ("", "?user=", "?user=%3Cscript%3E", "?user=" + "x" * 33):
        answer = await running.get("/demo/token" + query)
        assert answer.status == 400, query
        assert "a name is 1-32" in answer.json()["error"]


async def test_demo_token_only_on_a_loopback_server(start_wavecast: StartWavecast) -> None:
    # It signed a token for any user with the real secret, for whoever could reach the server.
    running = await start_wavecast(server={"host": "0.0.0.0"}, demo={"enabled": True})
    answer = await running.get("/demo/token?user=admin")
    assert answer.status == 403
    error = answer.json()["error"]
    assert error.startswith("the demo signs a token for any user name, so it does only on a server bound to a ")
    assert "server.host is '0.0.0.0'" in error
    assert "token" not in answer.json()
    # The rest of the demo is served, and says why sign-in fails.
    assert (await running.get("/")).status == 200


@pytest.mark.parametrize(
    ("host", "signs"),
    [
        ("127.0.0.1", True),
        ("127.1.2.3", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("192.168.1.10", False),
        ("example.com", False),
        ("localhost.example.com", False),
    ],
)
async def test_demo_token_decides_by_the_configured_host(host: str, signs: bool) -> None:
    # Under an ASGI server too, where the configuration's host is all the app knows.
    config = make_config(server={"host": host}, demo={"enabled": True})
    app = App(config, build_node(config))
    answer = await app.http("GET", "/demo/token", "user=bob", {}, b"")
    assert answer.status == (200 if signs else 403)


async def test_demo_token_needs_a_secret(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(
        demo={"enabled": True},
        client={"token_hmac_secret_key": "", "allow_anonymous_connect_without_token": True},
    )
    answer = await running.get("/demo/token?user=bob")
    assert answer.status == 503


async def test_tls(start_wavecast: StartWavecast, certificates: Certificates) -> None:
    running = await start_wavecast(
        server={"tls_cert": str(certificates.cert_path), "tls_key": str(certificates.key_path)}
    )
    context = certificates.client_context()
    health = await http("GET", f"https://127.0.0.1:{running.port}/health", context=context)
    assert (health.status, health.json()) == (200, {"status": "ok"})
    connection = await connect(
        f"wss://127.0.0.1:{running.port}/connection/websocket", ssl=context, open_timeout=5000 * MS
    )
    try:
        await connection.send(json.dumps({"id": 1, "connect": {"token": make_token("alice")}}))
        reply = json.loads(await connection.recv())
        assert reply["id"] == 1
        assert running.node.hub.session(reply["connect"]["client"]) is not None
    finally:
        await connection.close()


async def test_start_fails_on_a_taken_port(start_wavecast: StartWavecast) -> None:
    first = await start_wavecast()
    config = make_config()
    config = dataclasses.replace(config, server=dataclasses.replace(config.server, port=first.port))
    node = build_node(config)
    with pytest.raises(OSError):
        await start_server(config, node)
    # The node started for it is stopped again.
    assert not node.started


async def test_start_fails_on_a_bad_certificate(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not a certificate")
    config = make_config(server={"tls_cert": str(cert), "tls_key": str(cert)})
    node = build_node(config)
    with pytest.raises(ConfigError, match=r"^server\.tls_cert, server\.tls_key: can't load '.*cert\.pem'"):
        await start_server(config, node)
    assert not node.started


def test_login_throttle_tracks_a_bounded_number_of_addresses() -> None:
    throttle = _LoginThrottle(rate=1.0, burst=1, max_addresses=3)
    assert throttle.failed("a", now=0.0) == 0.0
    assert throttle.failed("a", now=0.0) == 1.0
    assert (throttle.wait("a", now=0.5), throttle.wait("a", now=1.0), throttle.wait("b", now=0.5)) == (0.5, 0.0, 0.0)
    # A spray of addresses: the table keeps the 3 that failed last.
    for n in range(100):
        throttle.failed(f"sprayed-{n}", now=2.0)
    assert len(throttle) == 3
    assert throttle.wait("a", now=0.5) == 0.0
    assert _LoginThrottle(rate=None, burst=1, max_addresses=3).failed("a", now=0.0) == 0.0
