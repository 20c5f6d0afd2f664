"""Fixtures of the real-time tests: started nodes with a standard set of namespaces, and clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest

from wavecast.realtime import Node
from wavecast.realtime.codec import Codec, JSONCodec

from ..support.tokens import make_token
from .helpers import Client, ConnectClient, MakeNode, NewClient, node_config


@pytest.fixture
async def make_node() -> AsyncIterator[MakeNode]:
    """Start nodes with :func:`node_config`; shut them down when the test ends."""
    nodes: list[Node] = []

    async def make(*, broker: Any = None, presence_manager: Any = None, **config: Any) -> Node:
        node = Node(node_config(**config), broker=broker, presence_manager=presence_manager)
        await node.start()
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        for session in list(node.hub.sessions()):
            session.disconnect()
        await node.shutdown()


@pytest.fixture
async def node(make_node: MakeNode) -> Node:
    return await make_node()


@pytest.fixture
async def new_client() -> AsyncIterator[NewClient]:
    """Create clients; disconnect those still open when the test ends (stopping their timers)."""
    clients: list[Client] = []

    def create(node: Node, codec: Codec = JSONCodec) -> Client:
        client = Client(node, codec)
        clients.append(client)
        return client

    yield create
    for client in clients:
        client.session.disconnect()


@pytest.fixture
def connect(new_client: NewClient) -> ConnectClient:
    """``await connect(node, "42")``: a client connected with a token for user 42 (other claims
    as keywords); pass ``codec=ProtobufCodec`` for a client of the protobuf form, and
    ``subscribe="chat:1"`` (or several channels) for a client that subscribed then."""

    async def connect(
        node: Node,
        user: str = "42",
        *,
        codec: Codec = JSONCodec,
        subscribe: str | Iterable[str] = (),
        **claims: Any,
    ) -> Client:
        client = new_client(node, codec)
        await client.result("connect", {"token": make_token(user, ttl=None, **claims)})
        assert client.session.user == user
        for channel in [subscribe] if isinstance(subscribe, str) else subscribe:
            # A call, not a result: protobuf leaves an empty result out of the reply.
            reply = await client.call("subscribe", {"channel": channel})
            assert "error" not in reply, reply
        return client

    return connect
