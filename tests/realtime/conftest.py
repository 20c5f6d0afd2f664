"""Fixtures of the real-time tests: started nodes with a standard set of namespaces, and clients."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import pytest

from wavecast.realtime import ChannelOptions, Node, NodeConfig
from wavecast.realtime.codec import Codec, JSONCodec

from .helpers import SECRET, Client, token

#: The namespaces every test node has. Channels without a namespace are open to everyone.
NAMESPACES = {
    # Nothing is allowed without a token or a hook.
    "plain": ChannelOptions(),
    "secret": ChannelOptions(protected=True, allow_subscribe_for_client=True),
    # A chat: presence, join/leave, history with recovery, user-limited rooms.
    "chat": ChannelOptions(
        presence=True,
        join_leave=True,
        history_size=10,
        history_ttl=300,
        allow_recovery=True,
        allow_subscribe_for_client=True,
        allow_publish_for_subscriber=True,
        allow_presence_for_subscriber=True,
        allow_history_for_subscriber=True,
        allow_user_limited_channels=True,
    ),
    # Every subscriber is positioned and recovers.
    "feed": ChannelOptions(
        history_size=10,
        history_ttl=300,
        force_recovery=True,
        allow_subscribe_for_client=True,
        allow_subscribe_for_anonymous=True,
        allow_history_for_client=True,
    ),
    "drop": ChannelOptions(allow_subscribe_for_client=True, slow_consumer="drop_oldest"),
    "conflate": ChannelOptions(allow_subscribe_for_client=True, slow_consumer="conflate", conflation_key_tag="key"),
    "personal": ChannelOptions(presence=True),
}

DEFAULT_CHANNEL = ChannelOptions(
    allow_subscribe_for_client=True,
    allow_subscribe_for_anonymous=True,
    allow_publish_for_subscriber=True,
    allow_presence_for_client=True,
)


def node_config(**kwargs: Any) -> NodeConfig:
    """The test configuration, with ``kwargs`` overriding it."""
    defaults: dict[str, Any] = {
        "token_hmac_secret_key": SECRET,
        "channel": DEFAULT_CHANNEL,
        "namespaces": NAMESPACES,
    }
    return NodeConfig(**{**defaults, **kwargs})


class MakeNode(Protocol):
    def __call__(self, *, broker: Any = None, presence_manager: Any = None, **config: Any) -> Awaitable[Node]: ...


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


ConnectClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def new_client() -> AsyncIterator[Callable[..., Client]]:
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
def connect(new_client: Callable[..., Client]) -> ConnectClient:
    """``await connect(node, "42")``: a client connected with a token for user 42; pass
    ``codec=ProtobufCodec`` for a client of the protobuf form."""

    async def connect(node: Node, user: str = "42", *, codec: Codec = JSONCodec, **claims: Any) -> Client:
        client = new_client(node, codec)
        await client.result("connect", {"token": token(user, **claims)})
        assert client.session.user == user
        return client

    return connect
