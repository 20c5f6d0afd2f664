"""examples/fastapi_app.py under uvicorn, in this process, with centrifuge-python as the client."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import sys
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any, ClassVar

import pytest
from centrifuge import ClientDisconnectedError, ClientState

from wavecast.asyncio import connect
from wavecast.codes import DISCONNECT_FORCE_RECONNECT, DISCONNECT_SHUTDOWN
from wavecast.exceptions import ConnectionClosedError, InvalidStatus
from wavecast.realtime import Node, NodeConfig
from wavecast.server.asgi import NodeApp
from wavecast.server.config import Config, parse_config

from ..support.config import ADMIN_PASSWORD, node_config, open_channel
from ..support.http import basic_auth, http, http_from
from ..support.js import StartJS
from ..support.peers import handshake_request, open_raw_client
from ..support.sdk import Clients, subscribe
from ..support.servers import TRANSPORTS, StartWavecast, Uvicorn as UvicornServer, serve_uvicorn
from ..support.timing import MS, wait_until
from ..support.tokens import SECRET, make_token
from ..support.tools import ROOT

pytestmark = pytest.mark.interop

EXAMPLE = ROOT / "examples" / "fastapi_app.py"


def load_example() -> ModuleType:
    """Import a fresh copy of the example: its node is a module global."""
    spec = importlib.util.spec_from_file_location("fastapi_app_under_test", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass
class Uvicorn(UvicornServer):
    """The example under uvicorn; it mounts the node's application at ``/realtime``."""

    module: ModuleType
    mount: ClassVar[str] = "/realtime"

    @property
    def node(self) -> Node:
        node: Node = self.module.node
        return node


async def start_uvicorn(app: Any, module: ModuleType) -> Uvicorn:
    running = await serve_uvicorn(app)
    return Uvicorn(running.server, running.task, running.port, module)


@pytest.fixture
async def example() -> AsyncIterator[Uvicorn]:
    module = load_example()
    running = await start_uvicorn(module.app, module)
    try:
        yield running
    finally:
        if not running.task.done():
            await running.stop()
        sys.modules.pop("fastapi_app_under_test", None)


async def token(example: Uvicorn, user: str) -> str:
    answer = await http("GET", f"{example.url}/token?user={user}")
    assert answer.status == 200
    value: str = answer.json()["token"]
    return value


async def test_notify_reaches_a_subscriber(example: Uvicorn, make_client: Clients) -> None:
    client, events = make_client(example.ws_url, token=await token(example, "alice"))
    await client.connect()
    connected = await events.wait("connected")
    assert example.node.hub.session(connected.client) is not None
    news = await subscribe(client, "news:all")

    answer = await http("POST", example.url + "/notify", {"text": "hello from a route"})
    assert (answer.status, answer.json()) == (200, {"offset": 1})
    await news.wait("publication")
    assert news.data == [{"text": "hello from a route"}]
    assert news.named("publication")[0].pub.offset == 1

    # Several in a row arrive in order.
    for n in range(10):
        await http("POST", example.url + "/notify", {"n": n})
    await wait_until(lambda: len(news.data) == 11, timeout=5000 * MS, what="every notification")
    assert news.data[1:] == [{"n": n} for n in range(10)]


async def test_protobuf_clients_through_the_mount(example: Uvicorn, make_client: Clients) -> None:
    # uvicorn's WebSocket answers the centrifuge-protobuf subprotocol; data is bytes.
    client, events = make_client(example.ws_url, token=await token(example, "alice"), use_protobuf=True)
    await client.connect()
    connected = await events.wait("connected")
    session = example.node.hub.session(connected.client)
    assert session is not None and session.codec.name == "protobuf"
    news = await subscribe(client, "news:all")
    await example.node.publish("news:all", b"\x00\xffbinary")
    await news.wait("publication")
    assert news.data == [b"\x00\xffbinary"]


async def test_publish_from_the_client(example: Uvicorn, make_client: Clients) -> None:
    # news allows subscribing, not publishing: the reply is an error, and the connection stays.
    from centrifuge import ReplyError

    client, _ = make_client(example.ws_url, token=await token(example, "alice"))
    await client.connect()
    await subscribe(client, "news:all")
    sub = client.get_subscription("news:all")
    assert sub is not None
    with pytest.raises(ReplyError) as raised:
        await sub.publish({"text": "nope"})
    assert raised.value.code == 103
    assert client.state == ClientState.CONNECTED


async def test_recovery_through_the_mount(example: Uvicorn, make_client: Clients) -> None:
    # A reconnect delay long enough for the publication below to happen while disconnected.
    client, events = make_client(
        example.ws_url, token=await token(example, "alice"), min_reconnect_delay=0.5, max_reconnect_delay=0.5
    )
    await client.connect()
    news = await subscribe(client, "news:all")
    await http("POST", example.url + "/notify", {"n": 1})
    await news.wait("publication")

    await example.node.disconnect("alice", DISCONNECT_FORCE_RECONNECT)
    await http("POST", example.url + "/notify", {"n": 2})
    # The client comes back and recovers what it missed (the namespace forces recovery).
    subscribed = await news.wait("subscribed", lambda ctx: ctx.was_recovering)
    assert subscribed.recovered
    await wait_until(lambda: len(news.data) == 2, what="the missed publication")
    assert news.data == [{"n": 1}, {"n": 2}]
    assert len(events.named("connected")) == 2


async def test_oversized_message_closes_1009_as_the_native_server_does(example: Uvicorn, make_client: Clients) -> None:
    # It closed with 3507, which Centrifugo's SDKs read as "permission denied".
    ws = await connect(example.ws_url, open_timeout=5000 * MS, compression=None)
    try:
        await ws.send(json.dumps({"id": 1, "connect": {"token": await token(example, "alice")}}))
        assert "connect" in json.loads(await ws.recv())
        # Text counts in UTF-8: 20000 "é" are 40000 bytes, under the 64 KiB limit.
        await ws.send(json.dumps({"id": 2, "rpc": {"method": "echo", "data": "é" * 20000}}, ensure_ascii=False))
        assert json.loads(await ws.recv())["error"]["code"] == 104
        await ws.send(json.dumps({"id": 3, "rpc": {"method": "echo", "data": "é" * 40000}}, ensure_ascii=False))
        with pytest.raises(ConnectionClosedError):
            await ws.recv()
        assert (ws.close_code, ws.close_reason) == (1009, "message too big")
    finally:
        await ws.close()
    await wait_until(lambda: example.node.hub.num_sessions == 0, what="the session to end")

    # centrifuge-python reports 1009 as its "message size limit" (code 3).
    client, events = make_client(example.ws_url, token=await token(example, "alice"))
    await client.connect()
    await events.wait("connected")
    with pytest.raises(ClientDisconnectedError):
        await client.rpc("echo", "x" * 70000)
    connecting = await events.wait("connecting", lambda ctx: ctx.code != 0)
    assert (connecting.code, connecting.reason) == (3, "message size limit")


async def test_invalid_token_is_refused(example: Uvicorn, make_client: Clients) -> None:
    import jwt

    bad = jwt.encode({"sub": "mallory"}, "another-secret-of-at-least-32-bytes!", algorithm="HS256")
    client, events = make_client(example.ws_url, token=bad)
    await client.connect()
    disconnected = await events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (3500, "invalid token")


@pytest.mark.parametrize(
    "path",
    ["/realtime/other", "/realtime/connection/websocket/x", "/realtime/", "/connection/websocket"],
)
async def test_websocket_endpoint_rejects_other_paths(example: Uvicorn, path: str) -> None:
    with pytest.raises(InvalidStatus) as raised:
        await connect(f"ws://127.0.0.1:{example.port}{path}", open_timeout=5000 * MS, compression=None)
    assert raised.value.status_code == 403
    assert example.node.hub.num_sessions == 0


async def test_http_routes_through_the_mount(example: Uvicorn) -> None:
    health = await http("GET", example.url + "/realtime/health")
    assert (health.status, health.json()) == (200, {"status": "ok"})
    assert health.headers["content-type"] == "application/json"
    ready = await http("GET", example.url + "/realtime/ready")
    assert (ready.status, ready.json()) == (200, {"status": "ready"})
    head = await http("HEAD", example.url + "/realtime/health")
    assert (head.status, head.body) == (200, b"")
    # A plain GET of the WebSocket endpoint asks for an upgrade.
    upgrade = await http("GET", example.url + "/realtime/connection/websocket")
    assert upgrade.status == 426
    # The example passes no API key: no API. Nor metrics, nor admin, nor demo, unless configured.
    for path in ("/realtime/api/info", "/realtime/metrics", "/realtime/admin", "/realtime/"):
        answer = await http("POST" if "api" in path else "GET", example.url + path, {} if "api" in path else None)
        assert answer.status == 404, path
    # The application's own routes are untouched.
    assert (await http("GET", example.url + "/nope")).status == 404


async def test_api_when_mounted_with_a_key() -> None:
    node = Node()
    app = NodeApp(node, api_key="asgi-api-key")
    module = ModuleType("bare")
    module.node = node  # type: ignore[attr-defined]
    running = await start_uvicorn(app, module)
    try:
        info = await http("POST", running.url + "/api/info", {}, headers={"X-API-Key": "asgi-api-key"})
        assert info.status == 200
        assert info.json()["result"]["nodes"][0]["uid"] == node.uid
        denied = await http("POST", running.url + "/api/info", {}, headers={"X-API-Key": "wrong"})
        assert denied.status == 401
        # The bare app's own lifespan started the node.
        assert node.started
        assert (await http("GET", running.url + "/ready")).status == 200
    finally:
        await running.stop()
    assert not node.started


async def test_shutdown_moves_clients_to_reconnect(example: Uvicorn, make_client: Clients) -> None:
    client, events = make_client(example.ws_url, token=await token(example, "alice"))
    await client.connect()
    await events.wait("connected")
    await subscribe(client, "news:all")
    await example.stop()
    # The client reconnects (to another instance, in production), and its session is gone.
    connecting = await events.wait("connecting", lambda ctx: ctx.code != 0)
    # uvicorn closes WebSockets (1012, "transport closed" to the SDK) before the lifespan's
    # shutdown runs; a server that shut the node down first would send 3001.
    assert connecting.code in (1, DISCONNECT_SHUTDOWN.code)
    assert not events.named("disconnected")
    assert example.node.hub.num_sessions == 0
    assert not example.node.started


async def start_bare(node: Node, config: Config | None = None) -> Uvicorn:
    """Serve ``NodeApp(node, config=config)`` at the root of a uvicorn server."""
    module = ModuleType("bare")
    module.node = node  # type: ignore[attr-defined]
    return await start_uvicorn(NodeApp(node, config=config), module)


async def handshake_status(url: str, origin: str | None) -> int:
    """Open a WebSocket with this Origin (none if ``None``); return 101, or the refusal's status."""
    try:
        ws = await connect(url, origin=origin, open_timeout=5000 * MS, compression=None)
    except InvalidStatus as exc:
        return exc.status_code
    await ws.close()
    return 101


async def test_allowed_origins_as_the_native_server(start_wavecast: StartWavecast) -> None:
    # Under uvicorn every origin connected, though wavecast's own server refused them.
    allowed = ["https://app.example.com"]
    node = Node(NodeConfig(token_hmac_secret_key=SECRET, allowed_origins=allowed))
    mounted = await start_bare(node)
    native = await start_wavecast(server={"allowed_origins": allowed})
    try:
        cases = {"https://app.example.com": 101, "HTTPS://APP.example.com": 101, None: 101}
        cases |= {"https://evil.example": 403, "null": 403, "http://127.0.0.1": 403, "not an origin": 403}
        for origin, status in cases.items():
            assert await handshake_status(f"ws://127.0.0.1:{mounted.port}/connection/websocket", origin) == status
            assert await handshake_status(native.ws_url, origin) == status, origin
    finally:
        await mounted.stop()
    assert node.hub.num_sessions == 0


async def test_default_origin_policy_under_uvicorn() -> None:
    # Without allowed_origins: the server's own origin, and clients that send none.
    node = Node(NodeConfig(token_hmac_secret_key=SECRET))
    running = await start_bare(node)
    try:
        url = f"ws://127.0.0.1:{running.port}/connection/websocket"
        assert await handshake_status(url, running.url) == 101
        assert await handshake_status(url, None) == 101
        assert await handshake_status(url, "https://evil.example") == 403
        assert await handshake_status(url, "null") == 403
    finally:
        await running.stop()


def mounted_config(**sections: Any) -> Config:
    return parse_config(
        {
            "client": {"token_hmac_secret_key": SECRET},
            "http_api": {"enabled": False},
            "metrics": {"enabled": False},
            **sections,
        }
    )


async def test_admin_logins_are_throttled_per_client_address() -> None:
    # The address comes from the ASGI scope's "client".
    config = mounted_config(admin={"enabled": True, "password": ADMIN_PASSWORD, "login_failure_burst": 2})
    running = await start_bare(Node(config.node_config()), config)
    try:
        url = running.url + "/admin/api/info"
        statuses = [(await http("GET", url, headers=basic_auth("wrong"))).status for _ in range(3)]
        assert statuses == [401, 401, 429]
        throttled = await http("GET", url, headers=basic_auth(ADMIN_PASSWORD))
        assert throttled.status == 429
        assert 1 <= int(throttled.headers["retry-after"]) <= 5
        assert throttled.headers["x-frame-options"] == "DENY"
        assert (await http_from("127.0.0.2", "GET", url, basic_auth(ADMIN_PASSWORD))).status == 200
    finally:
        await running.stop()


async def test_demo_token_decides_by_the_configured_host() -> None:
    for host, status in (("0.0.0.0", 403), ("127.0.0.1", 200)):
        config = mounted_config(server={"host": host}, demo={"enabled": True})
        running = await start_bare(Node(config.node_config()), config)
        try:
            answer = await http("GET", running.url + "/demo/token?user=bob")
            assert answer.status == status, host
        finally:
            await running.stop()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_centrifuge_js_over_each_transport_under_uvicorn(start_js: StartJS, transport: str) -> None:
    node = Node(node_config(channel=open_channel(presence=True, force_recovery=True)))
    running = await serve_uvicorn(NodeApp(node))
    js = await start_js(**running.endpoint(transport), token=make_token("ann"))
    try:
        await js.ok("connect")
        connected = await js.wait("connected")
        assert connected["transport"] == transport
        await js.ok("subscribe", channel="chat")
        await js.ok("publish", channel="chat", data={"text": "hi"})
        assert (await js.wait("publication"))["data"] == {"text": "hi"}
        missing = await js.call("rpc", method="missing", data={})
        assert missing["error"]["code"] == 104
        presence = await js.ok("presence", channel="chat")
        assert [info["user"] for info in presence["clients"].values()] == ["ann"]
        history = await js.ok("history", channel="chat", limit=10)
        assert [p["data"] for p in history["publications"]] == [{"text": "hi"}]
        # The server ends the stream after a disconnect push: the client reconnects and recovers.
        await node.disconnect("ann", DISCONNECT_FORCE_RECONNECT)
        await node.publish("chat", {"text": "while away"})
        resubscribed = await js.wait("subscribed", lambda event: event["wasRecovering"])
        assert resubscribed["recovered"]
        assert (await js.wait("publication", lambda event: event["offset"] == 2))["data"] == {"text": "while away"}
        assert (await js.wait("connecting", lambda event: event["code"] == 3011))["reason"] == "force reconnect"
    finally:
        # uvicorn waits for the responses in progress before its lifespan's shutdown, which
        # would end the streams: the client leaves first.
        await js.close()
        await running.stop()


async def test_metrics_measure_the_event_loop_from_startup_to_shutdown() -> None:
    config = mounted_config(metrics={"enabled": True})
    app = NodeApp(Node(config.node_config()), config=config)
    module = ModuleType("bare")
    module.node = app.node  # type: ignore[attr-defined]
    running = await start_uvicorn(app, module)
    monitor = app.routes.loop_monitor
    assert monitor is not None
    try:
        metrics = (await http("GET", running.url + "/metrics")).text
        assert "\nwavecast_asyncio_tasks " in metrics
        assert "\nwavecast_event_loop_lag_seconds " in metrics
        assert monitor._timer is not None
    finally:
        await running.stop()
    # The lifespan's shutdown stopped the timer with the node.
    assert monitor._timer is None


async def test_per_address_limits_under_uvicorn() -> None:
    # The address comes from the scope's "client", or from X-Forwarded-For when that client
    # is a trusted proxy: this test plays the proxy from 127.0.0.1.
    config = mounted_config(
        server={"trusted_proxies": ["127.0.0.1"]},
        per_address={"max_connections": 1},
        http_stream={"enabled": True},
    )
    app = NodeApp(Node(config.node_config()), config=config)
    running = await serve_uvicorn(app)
    addresses = app.routes.addresses
    url = running.url.replace("http", "ws") + "/connection/websocket"
    opened = []
    try:
        opened.append(await connect(url, compression=None))
        with await open_raw_client(running.port) as raw:
            await raw.send(handshake_request(running.port, "/connection/websocket"))
            status, headers, body = await raw.read_response()
        assert (status, headers["retry-after"]) == (429, "10")
        assert body == b"Too Many Requests: this address has reached its limit of 1 open connections\n"
        stream = await http("POST", running.url + "/connection/http_stream", b"{}")
        assert (stream.status, stream.headers["retry-after"]) == (429, "10")
        # Another client behind the proxy.
        opened.append(await connect(url, compression=None, additional_headers={"X-Forwarded-For": "192.0.2.7"}))
        assert addresses.connections == {"127.0.0.1": 1, "192.0.2.7": 1}
        assert addresses.refused["connections"] == 2
    finally:
        for ws in opened:
            await ws.close()
        await wait_until(lambda: not addresses.connections, what="every connection released")
        await running.stop()
