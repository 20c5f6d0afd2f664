"""The event proxies end to end: ``wavecast serve``'s code with a backend written from
Centrifugo's proxy examples, and centrifuge-python clients over real sockets."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from centrifuge import ClientState, ReplyError

from wavecast.codes import (
    DISCONNECT_EXPIRED,
    ERROR_INTERNAL,
    ERROR_METHOD_NOT_FOUND,
    ERROR_NOT_AVAILABLE,
    UNSUBSCRIBE_EXPIRED,
)

from ...support.config import BASE_CONFIG, merge, write_config
from ...support.js import StartJS
from ...support.proxy_backend import KINDS, SLOW, ProxyBackend
from ...support.sdk import Clients, start_subscription, subscribe
from ...support.serve import StartServe
from ...support.servers import AppServer, StartWavecast
from ...support.timing import MS, wait_until


def proxied(backend: ProxyBackend, **client: Any) -> dict[str, Any]:
    """Sections that send every event of the ``chat`` namespace and every RPC to ``backend``."""
    proxy: dict[str, Any] = {kind: {"endpoint": backend.url(kind), "timeout": 1.0} for kind in KINDS}
    proxy["connect"]["http_headers"] = ["Authorization", "Cookie"]
    proxy["subscribe"]["http_headers"] = ["Authorization"]
    proxy["rpc"]["include_connection_meta"] = True
    enabled = {f"{kind}_proxy_enabled": True for kind in ("subscribe", "publish", "sub_refresh")}
    return {
        "proxy": proxy,
        "namespaces": {"chat": enabled},
        "rpc": {"without_namespace": {"proxy_enabled": True}},
        "client": client,
    }


async def connected(running: AppServer, make_client: Clients, user: str = "ann", **kwargs: Any) -> Any:
    client, events = make_client(running.ws_url, data={"user": user}, **kwargs)
    await client.connect()
    return client, events


async def test_connect_subscribe_publish_rpc_go_to_the_backend(
    start_wavecast: StartWavecast, proxy_backend: ProxyBackend, make_client: Clients
) -> None:
    running = await start_wavecast(**proxied(proxy_backend))
    headers = {"Authorization": "Bearer abc", "Cookie": "session=s1", "X-Other": "not forwarded"}
    client, events = await connected(running, make_client, headers=headers)
    ctx = await events.wait("connected")
    assert ctx.data == {"welcome": "ann"}
    (call,) = proxy_backend.called("connect")
    assert call.body == {
        "client": ctx.client,
        "transport": "websocket",
        "protocol": "json",
        "encoding": "json",
        "name": "python",
        "data": {"user": "ann"},
    }
    assert (call.headers["Authorization"], call.headers["Cookie"]) == ("Bearer abc", "session=s1")
    assert "X-Other" not in call.headers
    session = running.node.hub.session(ctx.client)
    assert session is not None and session.user == "ann"
    assert json.loads(session.info or b"") == {"name": "user ann"}

    sub = await subscribe(client, "chat:room")
    assert (await sub.wait("subscribed")).data == {"subscribed": "chat:room"}
    (call,) = proxy_backend.called("subscribe")
    assert (call.body["user"], call.body["channel"]) == ("ann", "chat:room")
    assert call.headers["Authorization"] == "Bearer abc" and "Cookie" not in call.headers
    # A namespace without a subscribe proxy keeps its options; the backend isn't asked.
    await subscribe(client, "news:today")
    assert len(proxy_backend.called("subscribe")) == 1

    # The backend rewrites what is published.
    await client.get_subscription("chat:room").publish({"text": "hi"})
    await wait_until(lambda: sub.data == [{"text": "hi", "checked": True}], what="the checked publication")
    (call,) = proxy_backend.called("publish")
    assert (call.body["channel"], call.body["data"]) == ("chat:room", {"text": "hi"})

    result = await client.rpc("getCurrentYear", {"q": 1})
    assert result.data["method"] == "getCurrentYear" and result.data["echo"] == {"q": 1}
    (call,) = proxy_backend.called("rpc")
    assert call.body["user"] == "ann"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (SLOW, ERROR_INTERNAL.code),  # past the timeout
        (b"<html>garbage</html>", ERROR_INTERNAL.code),
        (b'{"result": {"data": 1', ERROR_INTERNAL.code),
        (b'{"error": {"code": 0}}', ERROR_INTERNAL.code),
        (500, ERROR_INTERNAL.code),
        (b'{"result": {"data": "' + b"x" * 2**20 + b'"}}', ERROR_INTERNAL.code),  # past max_response_size
        ({"error": {"code": 1000, "message": "custom error"}}, 1000),
    ],
)
async def test_a_failing_backend_gives_the_client_centrifugos_code(
    start_wavecast: StartWavecast, proxy_backend: ProxyBackend, make_client: Clients, answer: Any, code: int
) -> None:
    running = await start_wavecast(**proxied(proxy_backend))
    client, _ = await connected(running, make_client)
    other, _ = await connected(running, make_client, user="bob")
    proxy_backend.answers["rpc"] = answer
    with pytest.raises(ReplyError) as raised:
        await client.rpc("method", {})
    assert raised.value.code == code
    # The server keeps serving: the other client's calls go through once the backend is back.
    del proxy_backend.answers["rpc"]
    assert (await other.rpc("method", {})).data["method"] == "method"
    assert client.state == ClientState.CONNECTED


async def test_a_backend_that_is_down(
    start_wavecast: StartWavecast, proxy_backend: ProxyBackend, make_client: Clients
) -> None:
    running = await start_wavecast(**proxied(proxy_backend))
    client, _ = await connected(running, make_client)
    await proxy_backend.stop()
    with pytest.raises(ReplyError) as raised:
        await client.rpc("method", {})
    assert raised.value.code == ERROR_INTERNAL.code
    # Connect fails with 100, which is temporary: the client keeps trying.
    late, events = make_client(running.ws_url, data={"user": "bob"})
    await late.connect()
    error = await events.wait("error")
    assert error.error.code == ERROR_INTERNAL.code
    assert late.state == ClientState.CONNECTING


async def test_disconnect_and_error_answers(
    start_wavecast: StartWavecast, proxy_backend: ProxyBackend, make_client: Clients
) -> None:
    running = await start_wavecast(**proxied(proxy_backend))
    proxy_backend.answers["connect"] = {"disconnect": {"code": 4501, "reason": "banned"}}
    client, events = make_client(running.ws_url, data={"user": "ann"})
    await client.connect()
    disconnected = await events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (4501, "banned")

    proxy_backend.answers["connect"] = {"result": {"user": "bob"}}
    proxy_backend.answers["subscribe"] = {"error": {"code": 1001, "message": "not in this room"}}
    client, events = await connected(running, make_client)
    sub = await start_subscription(client, "chat:closed")
    unsubscribed = await sub.wait("unsubscribed")
    assert (unsubscribed.code, unsubscribed.reason) == (1001, "not in this room")
    proxy_backend.answers["rpc"] = {"disconnect": {"code": 4000, "reason": "go away"}}
    with pytest.raises(Exception):  # noqa: B017 - the call ends with the connection, however the SDK says it
        await client.rpc("method", {})
    reconnecting = await events.wait("connecting", lambda ctx: ctx.code == 4000)
    assert reconnecting.reason == "go away"


async def test_refresh_and_sub_refresh_by_the_server(
    start_wavecast: StartWavecast, proxy_backend: ProxyBackend, make_client: Clients
) -> None:
    proxy_backend.ttl = 1
    running = await start_wavecast(**proxied(proxy_backend, presence_update_interval=0.2))
    client, events = await connected(running, make_client)
    sub = await subscribe(client, "chat:room")
    session = running.node.hub.session((await events.wait("connected")).client)
    assert session is not None and session.expire_at
    await wait_until(lambda: len(proxy_backend.called("refresh")) >= 1, timeout=5000 * MS, what="a refresh")
    await wait_until(lambda: len(proxy_backend.called("sub_refresh")) >= 1, timeout=5000 * MS, what="a sub refresh")
    call = proxy_backend.called("sub_refresh")[0]
    assert (call.body["user"], call.body["channel"]) == ("ann", "chat:room")
    assert json.loads(session.info or b"") == {"refreshed": True}

    # The backend ends the subscription: 2501, and the client subscribes again.
    proxy_backend.answers["sub_refresh"] = {"result": {"expired": True}}
    unsubscribed = await sub.wait("subscribing", lambda ctx: ctx.code == UNSUBSCRIBE_EXPIRED.code, timeout=5000 * MS)
    assert unsubscribed.reason == UNSUBSCRIBE_EXPIRED.reason
    # And the connection: 3005.
    proxy_backend.answers["refresh"] = {"result": {"expired": True}}
    # 3005 is a code to reconnect after.
    await events.wait("connecting", lambda ctx: ctx.code == DISCONNECT_EXPIRED.code, timeout=5000 * MS)


async def test_protobuf_clients_and_binary_encoding(
    start_wavecast: StartWavecast, proxy_backend: ProxyBackend, make_client: Clients
) -> None:
    sections = proxied(proxy_backend)
    sections["proxy"]["rpc"]["binary_encoding"] = True
    running = await start_wavecast(**sections)
    proxy_backend.answers["connect"] = {"result": {"user": "ann"}}
    client, _ = make_client(running.ws_url, use_protobuf=True)
    await client.connect()
    proxy_backend.answers["rpc"] = {"result": {"b64data": base64.b64encode(b"\x00\xffbytes").decode()}}
    result = await client.rpc("binary", b"\x01\x02")
    assert result.data == b"\x00\xffbytes"
    (call,) = proxy_backend.called("rpc")
    assert (call.body["protocol"], call.body["encoding"]) == ("protobuf", "binary")
    assert base64.b64decode(call.body["b64data"]) == b"\x01\x02"


async def test_centrifuge_js_through_the_proxies(
    start_wavecast: StartWavecast, proxy_backend: ProxyBackend, start_js: StartJS
) -> None:
    running = await start_wavecast(**proxied(proxy_backend))
    js = await start_js(url=running.ws_url, data={"user": "jo"})
    await js.ok("connect")
    assert (await js.wait("connected"))["data"] == {"welcome": "jo"}
    await js.ok("subscribe", channel="chat:js")
    assert (await js.wait("subscribed"))["data"] == {"subscribed": "chat:js"}
    await js.ok("publish", channel="chat:js", data={"text": "from js"})
    publication = await js.wait("publication")
    assert (publication["data"], publication["user"]) == ({"text": "from js", "checked": True}, "jo")
    assert (await js.ok("rpc", method="getCurrentYear", data={}))["data"]["method"] == "getCurrentYear"
    assert [call.body["user"] for call in proxy_backend.calls[1:]] == ["jo", "jo", "jo"]
    proxy_backend.answers["rpc"] = SLOW
    failed = await js.call("rpc", method="slow", data={})
    assert not failed["ok"] and failed["error"]["code"] == ERROR_INTERNAL.code


async def test_wavecast_serve_with_a_connect_proxy(
    tmp_path: Path, start_serve: StartServe, proxy_backend: ProxyBackend, make_client: Clients
) -> None:
    config = merge(BASE_CONFIG, proxied(proxy_backend))
    served = await start_serve(write_config(tmp_path, config))
    client, events = make_client(served.ws_url, data={"user": "ann"})
    await client.connect()
    assert (await events.wait("connected")).data == {"welcome": "ann"}
    assert (await client.rpc("getCurrentYear", {})).data["year"] == time.gmtime().tm_year


async def test_connect_results_channels_and_meta(
    start_wavecast: StartWavecast, proxy_backend: ProxyBackend, make_client: Clients
) -> None:
    running = await start_wavecast(**proxied(proxy_backend))
    proxy_backend.answers["connect"] = {"result": {"user": "ann", "channels": ["news:all"], "meta": {"plan": "pro"}}}
    client, events = await connected(running, make_client)
    assert (await events.wait("subscribed")).channel == "news:all"
    await client.rpc("method", {})
    # The rpc proxy has include_connection_meta; the subscribe proxy hasn't.
    assert proxy_backend.called("rpc")[0].body["meta"] == {"plan": "pro"}
    await subscribe(client, "chat:room")
    assert "meta" not in proxy_backend.called("subscribe")[0].body


async def test_rpc_namespaces(start_wavecast: StartWavecast, proxy_backend: ProxyBackend, make_client: Clients) -> None:
    sections = proxied(proxy_backend)
    sections["proxies"] = {"billing": {"endpoint": proxy_backend.url("rpc") + "?billing"}}
    sections["rpc"] = {"namespaces": {"billing": {"proxy_enabled": True, "proxy_name": "billing"}, "local": {}}}
    running = await start_wavecast(**sections)
    client, _ = await connected(running, make_client)
    assert (await client.rpc("billing:charge", {"cents": 5})).data["method"] == "billing:charge"
    for method, code in (("charge", ERROR_NOT_AVAILABLE.code), ("local:x", ERROR_NOT_AVAILABLE.code)):
        with pytest.raises(ReplyError) as raised:
            await client.rpc(method, {})
        assert raised.value.code == code
    with pytest.raises(ReplyError) as raised:
        await client.rpc("other:x", {})
    assert raised.value.code == ERROR_METHOD_NOT_FOUND.code
    assert [call.body["method"] for call in proxy_backend.called("rpc")] == ["billing:charge"]
