"""commands.presence: presence and presence_stats, and who may ask."""

from __future__ import annotations

from wavecast.realtime import Node

from ..helpers import ConnectClient, MakeNode


async def test_presence(node: Node, connect: ConnectClient) -> None:
    ann = await connect(node, "42", info={"name": "Ann"}, subscribe="chat:1")
    bob = await connect(node, "43", subscribe="chat:1")
    result = await ann.result("presence", {"channel": "chat:1"})
    assert result == {
        "presence": {
            ann.session.client: {"user": "42", "client": ann.session.client, "conn_info": {"name": "Ann"}},
            bob.session.client: {"user": "43", "client": bob.session.client},
        }
    }


async def test_presence_stats(node: Node, connect: ConnectClient) -> None:
    clients = [await connect(node, user, subscribe="chat:1") for user in ("42", "42", "43")]
    assert await clients[0].result("presence_stats", {"channel": "chat:1"}) == {"num_clients": 3, "num_users": 2}


async def test_presence_of_an_empty_channel_has_its_map(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    # The default namespace has no presence; the personal one has, and nobody in it.
    assert await client.error("presence", {"channel": "news"}) == 108
    await client.result("subscribe", {"channel": "chat:1"})
    await client.result("unsubscribe", {"channel": "chat:1"})
    assert await client.error("presence", {"channel": "chat:1"}) == 103


async def test_presence_needs_presence(node: Node, connect: ConnectClient) -> None:
    client = await connect(node, subscribe="news")
    assert await client.error("presence", {"channel": "news"}) == 108
    assert await client.error("presence_stats", {"channel": "news"}) == 108


async def test_presence_for_subscribers_only(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("presence", {"channel": "chat:1"}) == 103
    assert await client.error("presence_stats", {"channel": "chat:1"}) == 103


async def test_presence_errors(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("presence", {"channel": "nope:1"}) == 102
    assert await client.error("presence", {"channel": ""}) == 107


async def test_presence_for_clients_and_anonymous(make_node: MakeNode, connect: ConnectClient) -> None:
    from wavecast.realtime import ChannelOptions

    from ..helpers import NAMESPACES

    namespaces = {
        **NAMESPACES,
        "open": ChannelOptions(presence=True, allow_presence_for_client=True),
        "public": ChannelOptions(presence=True, allow_presence_for_anonymous=True),
    }
    node = await make_node(namespaces=namespaces)
    user, anonymous = await connect(node, "42"), await connect(node, "")
    assert await user.result("presence", {"channel": "open:1"}) == {"presence": {}}
    assert await anonymous.error("presence", {"channel": "open:1"}) == 103
    assert await anonymous.result("presence_stats", {"channel": "public:1"}) == {}
    assert await user.error("presence_stats", {"channel": "public:1"}) == 103
