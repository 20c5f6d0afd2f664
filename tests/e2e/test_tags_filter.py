"""Publication filters by tags with the SDKs over real sockets, on the memory and Redis engines.

Publications go through the HTTP API and ``node.publish`` with ``tags``; centrifuge-js
(``tagsFilter``, JSON and protobuf) and centrifuge-python (``tags_filter``) subscribers each
receive exactly the publications their filter passes, live and when they recover; a filter in
a namespace that doesn't allow it, or a malformed one, is refused with 107 "bad request".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from centrifuge import Filter

from ..support.config import API_KEY, RECOVERING
from ..support.js import StartJS
from ..support.sdk import Clients, start_subscription, subscribe
from ..support.servers import AppServer, StartWavecast
from ..support.timing import wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

TICKS = {**RECOVERING, "allow_tags_filter": True}
HEADERS = {"X-API-Key": API_KEY}
QUOTES = [
    ({"ticker": "AAPL", "price": "101", "source": "NASDAQ"}, {"n": 1}),
    ({"ticker": "MSFT", "price": "99", "source": "NASDAQ"}, {"n": 2}),
    ({"ticker": "AAPL", "price": "98", "source": "NYSE"}, {"n": 3}),
    ({"ticker": "IBM", "price": "150", "source": "NYSE"}, {"n": 4}),
    ({"ticker": "AAPL", "price": "120.5", "source": "NASDAQ"}, {"n": 5}),
]
#: centrifuge-js's tagsFilter: AAPL at 100 or more, from NASDAQ or NYSE.
JS_FILTER = {
    "op": "and",
    "nodes": [
        {"key": "ticker", "cmp": "eq", "val": "AAPL"},
        {"key": "price", "cmp": "gte", "val": "100"},
        {"key": "source", "cmp": "in", "vals": ["NASDAQ", "NYSE"]},
    ],
}


@pytest.fixture
async def server(start_on_engine: StartWavecast) -> AppServer:
    return await start_on_engine(namespaces={"ticks": TICKS})


async def publish_quotes(server: AppServer, quotes: list[tuple[dict[str, str], dict[str, int]]]) -> None:
    for tags, data in quotes:
        answer = await server.post("/api/publish", {"channel": "ticks:all", "data": data, "tags": tags}, HEADERS)
        assert "error" not in answer.json(), answer.json()


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_centrifuge_js_receives_what_its_filter_passes(
    server: AppServer, start_js: StartJS, protobuf: bool
) -> None:
    js = await start_js(url=server.ws_url, token=make_token("ann"), protobuf=protobuf)
    plain = await start_js(url=server.ws_url, token=make_token("bob"), protobuf=protobuf)
    for client in (js, plain):
        await client.ok("connect")
    await js.ok("subscribe", channel="ticks:all", tagsFilter=JS_FILTER)
    await plain.ok("subscribe", channel="ticks:all")
    await publish_quotes(server, QUOTES)
    await plain.wait("publication", lambda event: _data(event, protobuf) == {"n": 5})
    await js.wait("publication", lambda event: _data(event, protobuf) == {"n": 5})
    assert [_data(e, protobuf) for e in js.named("publication")] == [{"n": 1}, {"n": 5}]
    assert js.named("publication")[0]["tags"] == QUOTES[0][0]
    assert [_data(e, protobuf)["n"] for e in plain.named("publication")] == [1, 2, 3, 4, 5]

    # What it missed while away comes back filtered too; its position is the stream's.
    await js.ok("disconnect")
    await publish_quotes(server, [*QUOTES, *QUOTES])
    await js.ok("connect")
    await server.node.publish("ticks:all", {"n": 6}, tags={"ticker": "AAPL", "price": "100", "source": "NYSE"})
    await js.wait("publication", lambda event: _data(event, protobuf) == {"n": 6})
    assert [_data(e, protobuf)["n"] for e in js.named("publication")] == [1, 5, 1, 5, 1, 5, 6]
    subscribed = await js.wait("subscribed", lambda event: event["recovered"])
    assert subscribed["streamPosition"]["offset"] == 15


def _data(event: dict[str, Any], protobuf: bool) -> Any:
    data = event["data"]
    return json.loads(bytes.fromhex(data)) if protobuf else data


async def test_centrifuge_python_subscribers_with_ten_filters(server: AppServer, make_client: Clients) -> None:
    """Ten distinct filters, two subscribers each: every subscriber gets its ticker only."""
    tickers = [f"T{i}" for i in range(10)]
    received: dict[str, Any] = {}
    for ticker in tickers:
        for user in ("a", "b"):
            client, _ = await make_client.connected(server.ws_url, f"{user}{ticker}")
            received[f"{user}{ticker}"] = await subscribe(client, "ticks:all", tags_filter=Filter.eq("ticker", ticker))
    quotes = [({"ticker": tickers[i % 10]}, {"n": i}) for i in range(30)]
    await publish_quotes(server, quotes)
    for name, events in received.items():
        await wait_until(lambda events=events: len(events.data) == 3, what=f"three publications for {name}")  # type: ignore[misc]
        index = tickers.index(name[1:])
        assert events.data == [{"n": index}, {"n": index + 10}, {"n": index + 20}]


async def test_filters_are_refused_where_not_allowed_or_malformed(server: AppServer, make_client: Clients) -> None:
    client, _ = await make_client.connected(server.ws_url, "eve")
    not_allowed = await start_subscription(client, "news:x", tags_filter=Filter.eq("a", "b"))
    malformed = await start_subscription(client, "ticks:all", tags_filter=Filter.eq("a", ""))
    for events, detail in ((not_allowed, "not allowed"), (malformed, "eq comparison requires val")):
        # The SDK ends a subscription refused with a permanent error, with its code and message.
        ended = await events.wait("unsubscribed")
        assert ended.code == 107 and detail in ended.reason, ended
    # The connection serves on: a valid filter subscribes.
    await subscribe(client, "ticks:other", tags_filter=Filter.eq("a", "b"))
