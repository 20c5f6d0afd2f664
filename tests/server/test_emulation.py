"""The stream and emulation endpoints of ``wavecast serve`` over real sockets: their answers
to every kind of request, and a stream served from connect to graceful shutdown."""

from __future__ import annotations

import json

import aiohttp
import pytest

from ..support.http import http
from ..support.servers import AppServer, StartWavecast
from ..support.timing import wait_until
from ..support.tokens import make_token

STREAMS = {"http_stream": {"enabled": True}, "sse": {"enabled": True}}
CONNECT = json.dumps({"id": 1, "connect": {"token": make_token("ann")}})


@pytest.fixture
async def server(start_wavecast: StartWavecast) -> AppServer:
    return await start_wavecast(**STREAMS)


async def test_off_by_default(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast()
    assert (await running.post("/connection/http_stream", CONNECT)).status == 404
    assert (await running.get("/connection/sse?cf_connect=x")).status == 404
    assert (await running.post("/emulation", {"session": "x", "data": "{}"})).status == 404


async def test_http_stream_from_connect_to_shutdown(server: AppServer) -> None:
    async with (
        aiohttp.ClientSession() as client,
        client.post(
            f"{server.url}/connection/http_stream", data=CONNECT, headers={"Content-Type": "application/json"}
        ) as stream,
    ):
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "application/json"
        assert stream.headers["Transfer-Encoding"] == "chunked"
        assert stream.headers["X-Accel-Buffering"] == "no"
        reply = json.loads(await stream.content.readline())
        connect = reply["connect"]
        # As Centrifugo: the session the POSTs name, and the node by its uid.
        assert connect["node"] == server.node.uid and connect["session"]
        [session] = server.node.hub.user_sessions("ann")
        assert session.transport.name == "http_stream"

        rpc = json.dumps({"id": 2, "rpc": {"method": "nothing"}})
        posted = await http("POST", f"{server.url}/emulation", {"session": connect["session"], "data": rpc})
        assert posted.status == 204
        assert json.loads(await stream.content.readline()) == {
            "id": 2,
            "error": {"code": 104, "message": "method not found"},
        }

        await server.stop()
        # A stream has no close frame: the disconnect comes as a push, then the body ends.
        push = json.loads(await stream.content.readline())
        assert push == {"push": {"disconnect": {"code": 3001, "reason": "shutdown", "reconnect": True}}}
        assert await stream.content.read() == b""


async def test_sse_stream(server: AppServer) -> None:
    async with (
        aiohttp.ClientSession() as client,
        client.get(f"{server.url}/connection/sse", params={"cf_connect": CONNECT}) as stream,
    ):
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert await stream.content.readline() == b"\r\n"
        event = await stream.content.readline()
        assert event.startswith(b"data: {") and json.loads(event[len(b"data: ") :])["id"] == 1
        assert await stream.content.readline() == b"\n"
        [session] = server.node.hub.user_sessions("ann")
        assert session.transport.name == "sse"
        # Findable by its session id while its stream is open.
        assert len(server.node.emulation) == 1
    # The client left: the session ends with its stream.
    await wait_until(lambda: not server.node.hub.user_sessions("ann") and not len(server.node.emulation))


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/emulation", {"session": "nobody", "data": "{}"}, {}, 404),
        # A node that isn't live: Centrifugo's 404 too (an owner's forwards: tests/scale/).
        ("POST", "/emulation", {"session": "nobody", "node": "no-such-node", "data": "{}"}, {}, 404),
        ("POST", "/emulation", b"not json", {"Content-Type": "application/json"}, 400),
        ("POST", "/emulation", b"\xff\x01", {"Content-Type": "application/octet-stream"}, 400),
        ("GET", "/emulation", None, {}, 405),
        ("POST", "/emulation", {"session": "x", "data": "x" * 70000}, {}, 413),
        ("POST", "/connection/http_stream", "x" * 70000, {}, 413),
        ("GET", "/connection/http_stream", None, {}, 405),
        ("PUT", "/connection/sse", b"", {}, 405),
        ("GET", "/connection/sse", None, {}, 400),
        ("POST", "/connection/sse", b"\x00", {"Content-Type": "application/octet-stream"}, 400),
        ("POST", "/connection/http_stream", b"\xff", {"Content-Type": "application/json"}, 400),
        ("POST", "/emulation", {"session": "x", "data": "{}"}, {"Origin": "https://elsewhere.example"}, 403),
        ("GET", "/connection/sse?cf_connect=x", None, {"Origin": "https://elsewhere.example"}, 403),
    ],
)
async def test_refusals(
    server: AppServer, method: str, path: str, body: object, headers: dict[str, str], status: int
) -> None:
    answer = await http(method, server.url + path, body, headers)
    assert answer.status == status, answer.text


async def test_cors_preflight_and_headers(start_wavecast: StartWavecast) -> None:
    origin = "https://app.example"
    running = await start_wavecast(server={"allowed_origins": [origin]}, **STREAMS)
    preflight = await http(
        "OPTIONS",
        f"{running.url}/emulation",
        headers={"Origin": origin, "Access-Control-Request-Headers": "content-type"},
    )
    assert preflight.status == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == origin
    assert preflight.headers["Access-Control-Allow-Credentials"] == "true"
    assert preflight.headers["Access-Control-Allow-Headers"] == "content-type"
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert preflight.headers["Access-Control-Max-Age"] == "300"
    unknown = await http("POST", f"{running.url}/emulation", {"session": "x", "data": "{}"}, {"Origin": origin})
    assert unknown.status == 404 and unknown.headers["Access-Control-Allow-Origin"] == origin
