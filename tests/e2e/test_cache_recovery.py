"""Cache recovery mode (``force_recovery_mode = "cache"``) with centrifuge-python and
centrifuge-js, on the memory and Redis engines: a subscriber gets the channel's latest
publication, not the stream, when it subscribes (``auto_cache_recover``, or centrifuge-js's
``since: {}``) and when it comes back after missing several."""

from __future__ import annotations

import pytest
from centrifuge import Client

from ..support.js import StartJS
from ..support.sdk import Clients, SubEvents, subscribe
from ..support.servers import AppServer, StartWavecast
from ..support.timing import wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

STATE = {"history_size": 1, "history_ttl": 300.0, "force_recovery": True, "allow_subscribe_for_client": True}


@pytest.fixture
async def server(start_on_engine: StartWavecast) -> AppServer:
    """A server with ``board`` (cache mode, the latest on every subscribe) and ``feed`` (cache
    mode, the latest after a reconnect), on each engine."""
    namespaces = {
        "board": {**STATE, "force_recovery_mode": "cache", "auto_cache_recover": True},
        "feed": {**STATE, "history_size": 100, "force_recovery_mode": "cache"},
    }
    return await start_on_engine(namespaces=namespaces)


async def publish(server: AppServer, channel: str, *values: int) -> None:
    for value in values:
        await server.node.publish(channel, {"v": value})


async def away(client: Client, server: AppServer, channel: str, *values: int) -> None:
    """Disconnect ``client``, publish ``values`` meanwhile, and connect it again."""
    await client.disconnect()
    await publish(server, channel, *values)
    await client.connect()


async def test_latest_on_subscribe_and_after_reconnect(server: AppServer, make_client: Clients) -> None:
    await publish(server, "board:prices", 1, 2, 3)
    client, _ = await make_client.connected(server.ws_url, "42")
    events = await subscribe(client, "board:prices")
    subscribed = events.named("subscribed")[0]
    assert (subscribed.was_recovering, subscribed.recovered) == (True, True)
    await wait_until(lambda: events.data == [{"v": 3}], what="the latest publication only")

    await publish(server, "board:prices", 4)
    await wait_until(lambda: events.data == [{"v": 3}, {"v": 4}], what="a live publication")
    await away(client, server, "board:prices", 5, 6, 7)
    await wait_until(lambda: len(events.named("subscribed")) == 2, what="the resubscription")
    await wait_until(lambda: events.data[-1] == {"v": 7}, what="the latest after the reconnect")
    assert events.data == [{"v": 3}, {"v": 4}, {"v": 7}]

    # Back without anything new: it has the state already, and gets nothing twice.
    await away(client, server, "board:prices")
    await wait_until(lambda: len(events.named("subscribed")) == 3, what="the resubscription")
    await publish(server, "board:prices", 8)
    await wait_until(lambda: events.data[-1] == {"v": 8}, what="a live publication")
    assert events.data == [{"v": 3}, {"v": 4}, {"v": 7}, {"v": 8}]


async def test_only_the_latest_after_reconnect_without_auto(server: AppServer, make_client: Clients) -> None:
    await publish(server, "feed:sensor", 1)
    client, _ = await make_client.connected(server.ws_url, "42")
    events: SubEvents = await subscribe(client, "feed:sensor")
    # Not asked on the first subscribe: the client starts from now, as in stream mode.
    assert not events.named("subscribed")[0].was_recovering
    await publish(server, "feed:sensor", 2)
    await wait_until(lambda: events.data == [{"v": 2}], what="a live publication")

    # Stream mode would resend 3 to 6; cache mode sends the state, 6.
    await away(client, server, "feed:sensor", 3, 4, 5, 6)
    await wait_until(lambda: len(events.named("subscribed")) == 2, what="the resubscription")
    again = events.named("subscribed")[1]
    assert (again.was_recovering, again.recovered) == (True, True)
    await wait_until(lambda: events.data[-1] == {"v": 6}, what="the latest after the reconnect")
    assert events.data == [{"v": 2}, {"v": 6}]


async def test_nothing_to_recover_in_an_empty_channel(server: AppServer, make_client: Clients) -> None:
    client, _ = await make_client.connected(server.ws_url, "42")
    events = await subscribe(client, "board:empty")
    subscribed = events.named("subscribed")[0]
    assert (subscribed.was_recovering, subscribed.recovered) == (True, False)
    await publish(server, "board:empty", 1)
    await wait_until(lambda: events.data == [{"v": 1}], what="the first publication, live")


async def test_js_asks_for_the_latest_with_an_empty_since(server: AppServer, start_js: StartJS) -> None:
    await publish(server, "feed:sensor", 1, 2, 3)
    js = await start_js(url=server.ws_url, token=make_token("ann"))
    await js.ok("connect")
    await js.ok("subscribe", channel="feed:sensor", since={})
    subscribed = await js.wait("subscribed")
    assert (subscribed["wasRecovering"], subscribed["recovered"]) == (True, True)
    assert subscribed["streamPosition"]["offset"] == 3
    publication = await js.wait("publication")
    assert (publication["data"], publication["offset"]) == ({"v": 3}, 3)
    await publish(server, "feed:sensor", 4)
    await wait_until(lambda: [p["data"] for p in js.named("publication")] == [{"v": 3}, {"v": 4}], what="a live one")
