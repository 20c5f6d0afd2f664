"""The server HTTP API with ``cent``, Centrifugo's Python API client from PyPI, used unchanged."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator

import pytest
from cent import (
    AsyncClient,
    BatchRequest,
    BroadcastRequest,
    CentApiResponseError,
    CentTransportError,
    CentUnauthorizedError,
    ChannelsRequest,
    Disconnect,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    RefreshRequest,
    StreamPosition,
    SubscribeRequest,
    UnsubscribeRequest,
)
from centrifuge import Client, ClientState

from wavecast.codes import DISCONNECT_EXPIRED

from ..support.config import API_KEY
from ..support.sdk import ClientEvents, Clients, subscribe
from ..support.servers import AppServer, StartWavecast
from ..support.timing import MS, wait_until

pytestmark = pytest.mark.interop


@pytest.fixture
async def running(start_wavecast: StartWavecast) -> AppServer:
    return await start_wavecast()


@pytest.fixture
async def api(running: AppServer) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(running.url + "/api", API_KEY, timeout=5.0) as client:
        yield client


async def connect(make_client: Clients, running: AppServer, user: str) -> tuple[Client, ClientEvents]:
    client, events = await make_client.connected(running.ws_url, user)
    await events.wait("connected")
    return client, events


# --- every method --------------------------------------------------------------------------------


async def test_publish_reaches_a_subscriber(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    client, _ = await connect(make_client, running, "alice")
    messages = await subscribe(client, "chat:lobby")

    result = await api.publish(PublishRequest(channel="chat:lobby", data={"text": "hello"}, tags={"kind": "greeting"}))
    assert result.offset == 1
    assert result.epoch
    await messages.wait("publication")
    (publication,) = messages.named("publication")
    assert publication.pub.data == {"text": "hello"}
    assert publication.pub.offset == 1
    assert publication.pub.tags == {"kind": "greeting"}

    # Without history, no position.
    news = await subscribe(client, "news:today")
    result = await api.publish(PublishRequest(channel="news:today", data="plain text"))
    assert (result.offset, result.epoch) == (0, "")
    await news.wait("publication")
    assert news.data == ["plain text"]


async def test_publish_skip_history(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    client, _ = await connect(make_client, running, "alice")
    messages = await subscribe(client, "chat:lobby")
    await api.publish(PublishRequest(channel="chat:lobby", data={"n": 1}))
    # Centrifugo's skip_history: delivered, but not kept, and the stream doesn't move.
    result = await api.publish(PublishRequest(channel="chat:lobby", data={"typing": True}, skip_history=True))
    assert (result.offset, result.epoch) == (0, "")
    await api.broadcast(BroadcastRequest(channels=["chat:lobby"], data={"typing": False}, skip_history=True))
    await api.publish(PublishRequest(channel="chat:lobby", data={"n": 2}))
    await wait_until(lambda: len(messages.data) == 4, what="every publication")
    assert messages.data == [{"n": 1}, {"typing": True}, {"typing": False}, {"n": 2}]
    history = await api.history(HistoryRequest(channel="chat:lobby", limit=10))
    assert [(publication.offset, publication.data) for publication in history.publications] == [
        (1, {"n": 1}),
        (2, {"n": 2}),
    ]


async def test_binary_data_in_b64data(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    # Centrifugo's b64data carries bytes JSON can't hold; protobuf clients receive them as they are.
    binary, _ = await make_client.connected(running.ws_url, "bob", use_protobuf=True)
    messages = await subscribe(binary, "chat:bin")
    data = b"\x00\x01\xfe\xff"
    encoded = base64.b64encode(data).decode()
    headers = {"X-API-Key": API_KEY}
    answer = await running.post("/api/publish", {"channel": "chat:bin", "b64data": encoded}, headers=headers)
    assert answer.json()["result"]["offset"] == 1
    body = {"channels": ["chat:bin"], "b64data": base64.b64encode(b"[2]").decode()}
    assert "error" not in (await running.post("/api/broadcast", body, headers=headers)).json()
    await api.publish(PublishRequest(channel="chat:bin", data={"n": 3}))
    await wait_until(lambda: len(messages.data) == 3, what="three publications")
    assert messages.data == [data, b"[2]", b'{"n": 3}']  # JSON data as the request wrote it
    # History answers in JSON: binary data goes back as b64data, JSON data as data.
    answer = await running.post("/api/history", {"channel": "chat:bin", "limit": 10}, headers=headers)
    publications = answer.json()["result"]["publications"]
    assert [(p.get("b64data"), p.get("data")) for p in publications] == [(encoded, None), (None, [2]), (None, {"n": 3})]


async def test_data_that_would_break_json_clients(running: AppServer, make_client: Clients) -> None:
    # JSON clients receive newline-delimited frames: JSON with a raw newline inside reaches them
    # compacted onto one line; bytes that aren't strictly UTF-8 JSON are binary, which a JSON
    # client can't take (3506, once), while the others of the channel go on.
    text, text_events = await connect(make_client, running, "alice")
    watcher, watcher_events = await connect(make_client, running, "carol")
    binary, _ = await make_client.connected(running.ws_url, "bob", use_protobuf=True)
    text_messages = await subscribe(text, "chat:room")
    watcher_messages = await subscribe(watcher, "chat:room")
    binary_messages = await subscribe(binary, "chat:room")
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    raw = b'{"channel": "chat:room", "data": {"a":\n 1,\r\n "b": [1,\n2]}}'
    assert "error" not in (await running.post("/api/publish", raw, headers=headers)).json()
    encoded = base64.b64encode(b'{"c":\n3}').decode()
    assert (
        "error"
        not in (await running.post("/api/publish", {"channel": "chat:room", "b64data": encoded}, headers)).json()
    )
    await wait_until(lambda: len(text_messages.data) == 2 and len(binary_messages.data) == 2, what="two publications")
    assert text_messages.data == watcher_messages.data == [{"a": 1, "b": [1, 2]}, {"c": 3}]
    assert binary_messages.data == [b'{"a":1,"b":[1,2]}', b'{"c":3}']
    history = await text.history("chat:room", limit=10)
    assert [p.data for p in history.publications] == text_messages.data

    # Invalid UTF-8 in a JSON string: binary data.
    invalid = base64.b64encode(b'"\xff"').decode()
    answer = await running.post("/api/publish", {"channel": "chat:room", "b64data": invalid}, headers)
    assert answer.json()["result"]["offset"] == 3
    await wait_until(lambda: len(binary_messages.data) == 3, what="the binary publication")
    assert binary_messages.data[-1] == b'"\xff"'
    for events in (text_events, watcher_events):
        assert (await events.wait("disconnected")).code == 3506
    # The node serves everyone else as before; history gives the item back as b64data.
    await running.post("/api/publish", {"channel": "chat:room", "data": {"after": True}}, headers)
    await wait_until(lambda: len(binary_messages.data) == 4, what="a later publication")
    answer = await running.post("/api/history", {"channel": "chat:room", "limit": 10}, headers=headers)
    publications = answer.json()["result"]["publications"]
    assert [p.get("b64data") for p in publications] == [None, None, invalid, None]


async def test_b64data_that_isnt_base64(running: AppServer) -> None:
    for body in ({"channel": "chat:x", "b64data": "not base64!"}, {"channels": ["chat:x"], "b64data": "@@"}):
        method = "publish" if "channel" in body else "broadcast"
        answer = await running.post(f"/api/{method}", body, headers={"X-API-Key": API_KEY})
        assert answer.json() == {"error": {"code": 107, "message": "bad request"}}


async def test_broadcast(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    client, _ = await connect(make_client, running, "alice")
    lobby = await subscribe(client, "chat:lobby")
    news = await subscribe(client, "news:today")

    result = await api.broadcast(BroadcastRequest(channels=["chat:lobby", "news:today"], data={"n": 1}))
    assert [response.error for response in result.responses] == [None, None]
    assert result.responses[0].result is not None and result.responses[0].result.offset == 1
    await lobby.wait("publication")
    await news.wait("publication")
    assert lobby.data == news.data == [{"n": 1}]


async def test_broadcast_reports_each_channel(running: AppServer, api: AsyncClient) -> None:
    result = await api.broadcast(BroadcastRequest(channels=["chat:a", "nope:b", "chat:c"], data={"n": 1}))
    errors = [response.error for response in result.responses]
    assert errors[0] is None and errors[2] is None
    assert errors[1] is not None and (errors[1].code, errors[1].message) == (102, "unknown channel")


async def test_a_publish_retried_with_its_idempotency_key_is_delivered_once(
    running: AppServer, api: AsyncClient, make_client: Clients
) -> None:
    client, _ = await connect(make_client, running, "alice")
    lobby = await subscribe(client, "chat:lobby")
    news = await subscribe(client, "news:today")
    # A backend's retries: each repeat gets the first result, and nothing more is delivered.
    first = await api.publish(PublishRequest(channel="chat:lobby", data={"n": 1}, idempotency_key="order-1"))
    for _ in range(2):
        again = await api.publish(PublishRequest(channel="chat:lobby", data={"n": 1}, idempotency_key="order-1"))
        assert (again.offset, again.epoch) == (first.offset, first.epoch) == (1, first.epoch)
    for _ in range(3):
        result = await api.broadcast(
            BroadcastRequest(channels=["chat:lobby", "news:today"], data={"n": 2}, idempotency_key="order-2")
        )
        assert [r.result.offset for r in result.responses if r.result is not None] == [2, 0]
    await api.publish(PublishRequest(channel="news:today", data={"n": 3}, idempotency_key="order-1"))
    await api.publish(PublishRequest(channel="chat:lobby", data={"n": 4}))
    await wait_until(lambda: len(lobby.data) == 3 and len(news.data) == 2, what="every publication")
    assert lobby.data == [{"n": 1}, {"n": 2}, {"n": 4}]
    assert news.data == [{"n": 2}, {"n": 3}]
    history = await api.history(HistoryRequest(channel="chat:lobby", limit=10))
    assert [publication.offset for publication in history.publications] == [1, 2, 3]


async def test_an_idempotency_key_over_its_limit_is_refused(running: AppServer, api: AsyncClient) -> None:
    with pytest.raises(CentApiResponseError) as raised:
        await api.publish(PublishRequest(channel="chat:x", data={}, idempotency_key="k" * 257))
    assert (raised.value.code, raised.value.message) == (107, "bad request")
    with pytest.raises(CentApiResponseError) as raised:
        await api.broadcast(BroadcastRequest(channels=["chat:x"], data={}, idempotency_key="k" * 257))
    assert raised.value.code == 107
    assert (await api.publish(PublishRequest(channel="chat:x", data={}, idempotency_key="k" * 256))).offset == 1


async def test_subscribe_and_unsubscribe(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    _, events = await connect(make_client, running, "alice")

    await api.subscribe(SubscribeRequest(user="alice", channel="news:alerts"))
    subscribed = await events.wait("subscribed")
    assert subscribed.channel == "news:alerts"
    await api.publish(PublishRequest(channel="news:alerts", data={"alert": True}))
    publication = await events.wait("publication")
    assert (publication.channel, publication.pub.data) == ("news:alerts", {"alert": True})
    assert running.node.channels() == {"news:alerts": 1}

    await api.unsubscribe(UnsubscribeRequest(user="alice", channel="news:alerts"))
    unsubscribed = await events.wait("unsubscribed")
    assert unsubscribed.channel == "news:alerts"
    await wait_until(lambda: running.node.channels() == {}, what="no subscribers")


async def test_unsubscribe_a_client_side_subscription(
    running: AppServer, api: AsyncClient, make_client: Clients
) -> None:
    client, _ = await connect(make_client, running, "alice")
    messages = await subscribe(client, "chat:lobby")
    await api.unsubscribe(UnsubscribeRequest(user="alice", channel="chat:lobby"))
    await messages.wait("unsubscribed")
    await wait_until(lambda: running.node.channels() == {}, what="no subscribers")


async def test_disconnect(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    client, events = await connect(make_client, running, "alice")
    await api.disconnect(DisconnectRequest(user="alice", disconnect=Disconnect(code=4501, reason="banned")))
    disconnected = await events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (4501, "banned")
    assert client.state == ClientState.DISCONNECTED


async def test_disconnect_one_client(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    first, first_events = await connect(make_client, running, "alice")
    second, second_events = await connect(make_client, running, "alice")
    await api.disconnect(DisconnectRequest(user="alice", client=first.client_id))
    # The default disconnect doesn't reconnect.
    await first_events.wait("disconnected")
    assert first.state == ClientState.DISCONNECTED
    assert second.state == ClientState.CONNECTED
    assert not second_events.named("disconnected")


async def test_refresh_expired(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    _, events = await connect(make_client, running, "alice")
    await api.refresh(RefreshRequest(user="alice", expired=True))
    # 3005 tells the client to reconnect, with a fresh token.
    connecting = await events.wait("connecting", lambda ctx: ctx.code == DISCONNECT_EXPIRED.code)
    assert connecting.reason == DISCONNECT_EXPIRED.reason
    await wait_until(lambda: len(events.named("connected")) == 2, what="a reconnection")


async def test_presence_and_stats(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    alice, _ = await connect(make_client, running, "alice")
    bob, _ = await connect(make_client, running, "bob")
    another_bob, _ = await connect(make_client, running, "bob")
    for client in (alice, bob, another_bob):
        await subscribe(client, "chat:lobby")

    presence = await api.presence(PresenceRequest(channel="chat:lobby"))
    assert {client: info.user for client, info in presence.presence.items()} == {
        alice.client_id: "alice",
        bob.client_id: "bob",
        another_bob.client_id: "bob",
    }
    assert all(info.client == client for client, info in presence.presence.items())
    stats = await api.presence_stats(PresenceStatsRequest(channel="chat:lobby"))
    assert (stats.num_clients, stats.num_users) == (3, 2)

    empty = await api.presence_stats(PresenceStatsRequest(channel="chat:empty"))
    assert (empty.num_clients, empty.num_users) == (0, 0)


async def test_history_and_history_remove(running: AppServer, api: AsyncClient) -> None:
    for n in range(5):
        await api.publish(PublishRequest(channel="chat:log", data={"n": n}))

    history = await api.history(HistoryRequest(channel="chat:log", limit=10))
    assert [publication.data for publication in history.publications] == [{"n": n} for n in range(5)]
    assert [publication.offset for publication in history.publications] == [1, 2, 3, 4, 5]
    assert history.offset == 5
    epoch = history.epoch

    latest = await api.history(HistoryRequest(channel="chat:log", limit=2, reverse=True))
    assert [publication.offset for publication in latest.publications] == [5, 4]
    since = await api.history(HistoryRequest(channel="chat:log", limit=10, since=StreamPosition(offset=3, epoch=epoch)))
    assert [publication.offset for publication in since.publications] == [4, 5]
    position_only = await api.history(HistoryRequest(channel="chat:log", limit=0))
    assert (position_only.publications, position_only.offset, position_only.epoch) == ([], 5, epoch)

    await api.history_remove(HistoryRemoveRequest(channel="chat:log"))
    removed = await api.history(HistoryRequest(channel="chat:log", limit=10))
    assert removed.publications == []
    # The stream's position survives: recovering clients see what they missed is gone.
    assert (removed.offset, removed.epoch) == (5, epoch)


async def test_channels(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    alice, _ = await connect(make_client, running, "alice")
    bob, _ = await connect(make_client, running, "bob")
    await subscribe(alice, "chat:lobby")
    await subscribe(bob, "chat:lobby")
    await subscribe(bob, "news:today")

    channels = await api.channels(ChannelsRequest())
    assert {name: info.num_clients for name, info in channels.channels.items()} == {"chat:lobby": 2, "news:today": 1}
    chat = await api.channels(ChannelsRequest(pattern="chat:*"))
    assert list(chat.channels) == ["chat:lobby"]


async def test_info(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    alice, _ = await connect(make_client, running, "alice")
    await subscribe(alice, "chat:lobby")
    await connect(make_client, running, "bob")

    (node,) = (await api.info(InfoRequest())).nodes
    assert node.uid == running.node.uid
    # Without client.name, Centrifugo's default: <hostname>_<port> (the configured port, 0 here).
    assert node.name == f"{socket.gethostname()}_0"
    assert node.version
    assert (node.num_clients, node.num_users, node.num_channels, node.num_subs) == (2, 2, 1, 1)


async def test_batch(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    client, _ = await connect(make_client, running, "alice")
    messages = await subscribe(client, "chat:lobby")

    result = await api.batch(
        BatchRequest(
            requests=[
                PublishRequest(channel="chat:lobby", data={"n": 1}),
                PublishRequest(channel="chat:lobby", data={"n": 2}),
                PresenceStatsRequest(channel="chat:lobby"),
            ]
        )
    )
    first, second, stats = result.replies
    assert (first.offset, second.offset) == (1, 2)  # type: ignore[attr-defined]
    assert stats.num_clients == 1  # type: ignore[attr-defined]
    await wait_until(lambda: len(messages.data) == 2, what="both publications")
    assert messages.data == [{"n": 1}, {"n": 2}]


# --- errors -------------------------------------------------------------------------------------------


async def test_wrong_key(running: AppServer) -> None:
    async with AsyncClient(running.url + "/api", "not-the-key") as api:
        with pytest.raises(CentUnauthorizedError):
            await api.info(InfoRequest())
    async with AsyncClient(running.url + "/api", "") as api:
        with pytest.raises(CentUnauthorizedError):
            await api.info(InfoRequest())
    answer = await running.post("/api/info", {}, headers={"X-API-Key": "not-the-key"})
    assert (answer.status, answer.json()) == (401, {"error": {"code": 401, "message": "unauthorized"}})


async def test_authorization_apikey_header(running: AppServer) -> None:
    answer = await running.post("/api/info", {}, headers={"Authorization": f"apikey {API_KEY}"})
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.json()["result"]["nodes"][0]["uid"] == running.node.uid
    answer = await running.post("/api/info", {}, headers={"Authorization": "apikey wrong"})
    assert answer.status == 401
    answer = await running.post("/api/info", {}, headers={"Authorization": f"Bearer {API_KEY}"})
    assert answer.status == 401


async def test_unknown_method(running: AppServer) -> None:
    answer = await running.post("/api/nope", {}, headers={"X-API-Key": API_KEY})
    assert (answer.status, answer.json()) == (404, {"error": {"code": 104, "message": "method not found"}})


async def test_unknown_method_through_cent(running: AppServer, api: AsyncClient) -> None:
    # A Centrifugo PRO method that wavecast doesn't have.
    from cent import ConnectionsRequest

    with pytest.raises(CentTransportError) as raised:
        await api.connections(ConnectionsRequest(user="alice", expression=""))
    assert raised.value.status_code == 404


async def test_get_isnt_allowed(running: AppServer) -> None:
    answer = await running.get("/api/info", headers={"X-API-Key": API_KEY})
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b'{"channel": 1, "data": {}}', b'{"data": {}}', b"\xff"])
async def test_malformed_request(running: AppServer, body: bytes) -> None:
    answer = await running.post("/api/publish", body, headers={"X-API-Key": API_KEY})
    assert answer.status == 200
    error = answer.json()["error"]
    assert error["code"] == 107
    assert error["message"].startswith("bad request")


async def test_publish_without_data(running: AppServer) -> None:
    answer = await running.post("/api/publish", {"channel": "chat:x"}, headers={"X-API-Key": API_KEY})
    assert answer.json() == {"error": {"code": 107, "message": "bad request"}}


async def test_unknown_namespace(running: AppServer, api: AsyncClient) -> None:
    with pytest.raises(CentApiResponseError) as raised:
        await api.publish(PublishRequest(channel="nope:x", data={}))
    assert (raised.value.code, raised.value.message) == (102, "unknown channel")
    with pytest.raises(CentApiResponseError) as raised:
        await api.history(HistoryRequest(channel="nope:x"))
    assert raised.value.code == 102


async def test_not_available(running: AppServer, api: AsyncClient) -> None:
    with pytest.raises(CentApiResponseError) as raised:
        await api.presence(PresenceRequest(channel="news:x"))
    assert (raised.value.code, raised.value.message) == (108, "not available")
    with pytest.raises(CentApiResponseError) as raised:
        await api.presence_stats(PresenceStatsRequest(channel="news:x"))
    assert (raised.value.code, raised.value.message) == (108, "not available")
    with pytest.raises(CentApiResponseError) as raised:
        await api.history(HistoryRequest(channel="news:x", limit=10))
    assert raised.value.code == 108


async def test_batch_with_mixed_results(running: AppServer) -> None:
    # cent can't parse a batch with errors in it; Centrifugo's format is checked directly.
    commands = [
        {"publish": {"channel": "chat:lobby", "data": {"n": 1}}},
        {"publish": {"channel": "nope:x", "data": {}}},
        {"presence": {"channel": "news:x"}},
        {"nope": {}},
        {"publish": {"channel": 1}},
        {"info": {}, "publish": {}},
        {"history": {"channel": "chat:lobby", "limit": 5}},
    ]
    answer = await running.post("/api/batch", {"commands": commands}, headers={"X-API-Key": API_KEY})
    assert answer.status == 200
    replies = answer.json()["replies"]
    assert len(replies) == len(commands)
    assert replies[0]["publish"]["offset"] == 1
    assert replies[1] == {"error": {"code": 102, "message": "unknown channel"}}
    assert replies[2] == {"error": {"code": 108, "message": "not available"}}
    assert replies[3] == {"error": {"code": 104, "message": "method not found"}}
    assert replies[4]["error"]["code"] == 107
    assert replies[5] == {"error": {"code": 107, "message": "bad request"}}
    assert [p["data"] for p in replies[6]["history"]["publications"]] == [{"n": 1}]


@pytest.mark.parametrize("body", [b"{", b"{}", b'{"commands": 1}', b'{"commands": [1]}'])
async def test_malformed_batch(running: AppServer, body: bytes) -> None:
    answer = await running.post("/api/batch", body, headers={"X-API-Key": API_KEY})
    assert answer.status == 200
    assert answer.json()["error"]["code"] == 107


async def test_insecure_api_needs_no_key(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(http_api={"key": "", "insecure": True})
    answer = await running.post("/api/info", {})
    assert answer.status == 200
    assert json.loads(answer.body)["result"]["nodes"][0]["num_clients"] == 0


async def test_disabled_api(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(http_api={"enabled": False})
    answer = await running.post("/api/info", {}, headers={"X-API-Key": API_KEY})
    assert answer.status == 404


async def test_publish_from_api_in_order(running: AppServer, api: AsyncClient, make_client: Clients) -> None:
    client, _ = await connect(make_client, running, "alice")
    messages = await subscribe(client, "chat:lobby")
    for n in range(20):
        await api.publish(PublishRequest(channel="chat:lobby", data={"n": n}))
    await wait_until(lambda: len(messages.data) == 20, timeout=5000 * MS, what="every publication")
    assert messages.data == [{"n": n} for n in range(20)]
