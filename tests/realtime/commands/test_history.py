"""commands.history: limits, since, reverse, and who may ask."""

from __future__ import annotations

from typing import Any

from wavecast.realtime import Node
from wavecast.realtime.codec import ProtobufCodec

from ..helpers import Client, ConnectClient, MakeNode, publish_in_stream


async def published(node: Node, count: int, channel: str = "feed:1") -> str:
    epoch = ""
    for n in range(1, count + 1):
        position = await publish_in_stream(node, channel, {"n": n})
        epoch = position.epoch
    return epoch


def ns(result: dict[str, Any]) -> list[int]:
    return [p["data"]["n"] for p in result.get("publications", [])]


async def subscribed(connect: ConnectClient, node: Node) -> Client:
    client = await connect(node, subscribe="chat:1")
    return client


async def test_history_limit_0_is_the_position(node: Node, connect: ConnectClient) -> None:
    epoch = await published(node, 3)
    client = await connect(node)
    assert await client.result("history", {"channel": "feed:1"}) == {"epoch": epoch, "offset": 3}


async def test_history_all(node: Node, connect: ConnectClient) -> None:
    epoch = await published(node, 3)
    client = await connect(node)
    result = await client.result("history", {"channel": "feed:1", "limit": -1})
    assert ns(result) == [1, 2, 3]
    assert (result["epoch"], result["offset"]) == (epoch, 3)
    assert [p["offset"] for p in result["publications"]] == [1, 2, 3]


async def test_history_limit(node: Node, connect: ConnectClient) -> None:
    await published(node, 5)
    client = await connect(node)
    assert ns(await client.result("history", {"channel": "feed:1", "limit": 2})) == [1, 2]


async def test_history_limit_is_capped(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(history_max_limit=2)
    await published(node, 5)
    client = await connect(node)
    assert ns(await client.result("history", {"channel": "feed:1", "limit": 100})) == [1, 2]
    assert ns(await client.result("history", {"channel": "feed:1", "limit": -1})) == [1, 2]


async def test_no_history_max_limit(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(history_max_limit=None)
    await published(node, 5)
    client = await connect(node)
    assert ns(await client.result("history", {"channel": "feed:1", "limit": -1})) == [1, 2, 3, 4, 5]
    assert ns(await client.result("history", {"channel": "feed:1", "limit": 3})) == [1, 2, 3]


async def test_history_since_and_reverse(node: Node, connect: ConnectClient) -> None:
    epoch = await published(node, 5)
    client = await connect(node)
    since = {"offset": 2, "epoch": epoch}
    assert ns(await client.result("history", {"channel": "feed:1", "limit": -1, "since": since})) == [3, 4, 5]
    assert ns(await client.result("history", {"channel": "feed:1", "limit": 2, "reverse": True})) == [5, 4]
    params = {"channel": "feed:1", "limit": -1, "since": {"offset": 4, "epoch": epoch}, "reverse": True}
    assert ns(await client.result("history", params)) == [3, 2, 1]


async def test_history_since_another_epoch(node: Node, connect: ConnectClient) -> None:
    await published(node, 2)
    client = await connect(node)
    params = {"channel": "feed:1", "limit": -1, "since": {"offset": 1, "epoch": "gone"}}
    assert await client.error("history", params) == 112


async def test_history_needs_history(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="news")
    assert await client.error("history", {"channel": "news"}) == 108


async def test_history_for_subscribers_only(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("history", {"channel": "chat:1"}) == 103
    await client.result("subscribe", {"channel": "chat:1"})
    assert await client.result("history", {"channel": "chat:1"}) != {}


async def test_history_for_clients_not_anonymous(node: Node, connect: ConnectClient) -> None:
    anonymous = await connect(node, "")
    assert await anonymous.error("history", {"channel": "feed:1"}) == 103


async def test_history_errors(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("history", {"channel": "nope:1"}) == 102
    assert await client.error("history", {"channel": ""}) == 107


async def test_history_with_binary_data(node: Node, connect: ConnectClient) -> None:
    await node.publish("feed:1", b"\x00\xff")
    binary = await connect(node, codec=ProtobufCodec)
    result = await binary.result("history", {"channel": "feed:1", "limit": -1})
    assert [p["data"] for p in result["publications"]] == ["AP8="]
    # A JSON client can't receive it: 3506, as Centrifugo disconnects it.
    text = await connect(node)
    text.new()
    await text.send({"id": 99, "history": {"channel": "feed:1", "limit": -1}})
    assert text.new() == []
    assert text.closed_with == 3506
