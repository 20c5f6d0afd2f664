"""When redis-server goes away and comes back, over real sockets: the server API and clients
get errors instead of silence, the node reconnects and resubscribes, and clients recover from
the stream or learn that it is lost."""

from __future__ import annotations

import asyncio

import pytest
from cent import Client as CentClient, PublishRequest
from cent.exceptions import CentApiResponseError
from centrifuge import ClientState, ReplyError

from ..support.cluster import cluster, two_nodes
from ..support.config import API_KEY
from ..support.http import api
from ..support.redis import RedisServer, restart
from ..support.sdk import Clients, start_subscription, subscribe
from ..support.servers import AppServer, StartWavecast
from ..support.timing import MS, wait_until

INTERNAL_ERROR = {"error": {"code": 100, "message": "internal server error"}}


@pytest.fixture
async def node(own_redis: RedisServer, start_wavecast: StartWavecast) -> AppServer:
    """A node in this process on ``own_redis``, which the test stops and starts."""
    return await start_wavecast(**cluster(own_redis))


async def test_the_api_answers_internal_error_while_redis_is_down(own_redis: RedisServer, node: AppServer) -> None:
    assert "result" in await api(node.url, "publish", {"channel": "rec:a", "data": {"n": 1}})
    await asyncio.to_thread(own_redis.stop)
    # Centrifugo's shape: code 100, its message, and nothing of the engine's insides.
    for method, body in [
        ("publish", {"channel": "rec:a", "data": {"n": 2}}),
        ("publish", {"channel": "news:a", "data": {"n": 3}}),
        ("history", {"channel": "rec:a"}),
        ("presence", {"channel": "rec:a"}),
        ("presence_stats", {"channel": "rec:a"}),
        ("history_remove", {"channel": "rec:a"}),
    ]:
        assert await api(node.url, method, body) == INTERNAL_ERROR, method
    broadcast = await api(node.url, "broadcast", {"channels": ["rec:a", "news:a"], "data": {"n": 4}})
    assert broadcast == {"result": {"responses": [INTERNAL_ERROR, INTERNAL_ERROR]}}
    batch = await api(node.url, "batch", {"commands": [{"publish": {"channel": "rec:a", "data": {}}}]})
    assert batch == {"replies": [INTERNAL_ERROR]}

    # cent, Centrifugo's own API client, reports it as an error too.
    cent = CentClient(f"{node.url}/api", api_key=API_KEY)
    with pytest.raises(CentApiResponseError) as raised:
        await asyncio.to_thread(cent.publish, PublishRequest(channel="rec:a", data={"n": 5}))
    assert raised.value.code == 100

    await asyncio.to_thread(own_redis.start)
    answer = await api(node.url, "publish", {"channel": "rec:a", "data": {"n": 6}})
    assert answer["result"]["offset"] == 1  # without persistence the stream started again


async def test_a_client_publish_gets_an_error_reply_while_redis_is_down(
    own_redis: RedisServer, node: AppServer, make_client: Clients
) -> None:
    client, events = await make_client.connected(node.ws_url, "ann")
    await events.wait("connected")
    received = await subscribe(client, "rec:a")
    sub = client.get_subscription("rec:a")
    assert sub is not None
    await sub.publish({"n": 1})
    await wait_until(lambda: received.data == [{"n": 1}], what="the first publication")

    await asyncio.to_thread(own_redis.stop)
    with pytest.raises(ReplyError) as raised:
        await sub.publish({"n": 2})
    assert (raised.value.code, raised.value.message, raised.value.temporary) == (100, "internal server error", True)
    # An error for that command, not a disconnection.
    assert client.state == ClientState.CONNECTED
    assert not events.named("disconnected")
    assert not events.named("connecting")[1:]


async def test_a_new_subscription_fails_while_redis_is_down_and_succeeds_after(
    own_redis: RedisServer, node: AppServer, make_client: Clients
) -> None:
    client, events = await make_client.connected(node.ws_url, "ann")
    await events.wait("connected")
    await asyncio.to_thread(own_redis.stop)
    # The subscribe gets error 100 (temporary): the SDK keeps trying, with backoff.
    received = await start_subscription(client, "news:a")
    await received.wait("error", lambda ctx: isinstance(ctx.error, ReplyError) and ctx.error.code == 100)
    await asyncio.to_thread(own_redis.start)
    await received.wait("subscribed", timeout=10_000 * MS)
    await api(node.url, "publish", {"channel": "news:a", "data": {"n": 1}})
    await wait_until(lambda: received.data == [{"n": 1}], what="a publication after the subscription")


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "lost"])
async def test_clients_recover_after_a_redis_restart_or_learn_the_stream_is_lost(
    request: pytest.FixtureRequest, start_wavecast: StartWavecast, make_client: Clients, persistent: bool
) -> None:
    server: RedisServer = request.getfixturevalue("persistent_redis" if persistent else "own_redis")
    listener, publisher = await two_nodes(server, start_wavecast)
    client, events = await make_client.connected(listener.ws_url, "ann")
    await events.wait("connected")
    received = await subscribe(client, "rec:a")
    first = received.named("subscribed")[0]
    for n in range(1, 4):
        await api(publisher.url, "publish", {"channel": "rec:a", "data": {"n": n}})
    await wait_until(lambda: len(received.data) == 3, what="three publications")

    await restart(server, down=300 * MS)
    # As soon as Redis is back, through the other node: the listening node may not be
    # subscribed again yet, and must get these from history.
    async with asyncio.timeout(10_000 * MS):
        while "error" in (answer := await api(publisher.url, "publish", {"channel": "rec:a", "data": {"n": 4}})):
            await asyncio.sleep(10 * MS)
    for n in range(5, 7):
        await api(publisher.url, "publish", {"channel": "rec:a", "data": {"n": n}})

    # The node tells its positioned subscribers (unsubscribe 2500); the SDK resubscribes from
    # its last position.
    again = await received.wait("subscribed", lambda ctx: ctx.was_recovering, timeout=10_000 * MS)
    assert again.stream_position is not None and first.stream_position is not None
    if persistent:
        assert again.recovered
        assert again.stream_position.epoch == first.stream_position.epoch
        await wait_until(lambda: len(received.data) == 6, timeout=5000 * MS, what="six publications")
        assert received.data == [{"n": n} for n in range(1, 7)]
    else:
        # The stream was lost with Redis: a new epoch, and the client is told it missed
        # what it can't get back instead of silently going on.
        assert not again.recovered
        assert again.stream_position.epoch != first.stream_position.epoch
        assert answer["result"]["epoch"] == again.stream_position.epoch
        await api(publisher.url, "publish", {"channel": "rec:a", "data": {"n": 7}})
        await wait_until(lambda: received.data[-1:] == [{"n": 7}], timeout=5000 * MS, what="a publication")
        assert received.data[:3] == [{"n": n} for n in range(1, 4)]
    assert client.state == ClientState.CONNECTED
    assert len(events.named("connected")) == 1
