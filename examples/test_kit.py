"""The kit's per-namespace hooks: a namespace without a hook keeps its options' permissions."""

from __future__ import annotations

import types
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from wavecast.codes import ERROR_PERMISSION_DENIED
from wavecast.exceptions import CommandError
from wavecast.realtime import ChannelOptions, Node, NodeConfig, PublishContext, PublishResult, SubscribeContext

from .kit import Hooks

OPEN = ChannelOptions(allow_subscribe_for_client=True, allow_publish_for_subscriber=True)


CONFIG = NodeConfig(namespaces={"open": OPEN, "closed": ChannelOptions(), "hooked": ChannelOptions()})


class FakeSession:
    """What the permission checks read of a session: its node's options, its user and its subscriptions."""

    node = types.SimpleNamespace(config=CONFIG)

    def __init__(self, user: str, subscribed: tuple[str, ...] = ()) -> None:
        self.user = user
        self.subscribed = set(subscribed)

    def is_subscribed(self, channel: str) -> bool:
        return channel in self.subscribed


def publishing(channel: str, session: FakeSession) -> PublishContext:
    fake: Any = session
    return PublishContext(session=fake, channel=channel, data=b"{}")


def subscribing(channel: str, session: FakeSession) -> SubscribeContext:
    fake: Any = session
    return SubscribeContext(session=fake, channel=channel, data=None)


@pytest.fixture
def node() -> Node:
    node = Node(CONFIG)
    hooks = Hooks()

    @hooks.publishing("hooked")
    async def tag(ctx: PublishContext) -> PublishResult:
        return PublishResult(tags={"by": ctx.session.user})

    @hooks.subscribing("hooked")
    async def grant(ctx: SubscribeContext) -> None:
        return None

    hooks.install(node)
    return node


async def test_a_namespace_with_a_hook_lets_the_hook_decide(node: Node) -> None:
    assert node.on_publish is not None and node.on_subscribe is not None
    result = await node.on_publish(publishing("hooked:x", FakeSession("alice")))
    assert result == PublishResult(tags={"by": "alice"})
    assert await node.on_subscribe(subscribing("hooked:x", FakeSession("alice"))) is None


async def test_a_namespace_without_a_hook_keeps_its_permissions(node: Node) -> None:
    assert node.on_publish is not None and node.on_subscribe is not None
    # Allowed by the options: a subscriber publishes, a user subscribes.
    assert await node.on_publish(publishing("open:x", FakeSession("alice", ("open:x",)))) is None
    assert await node.on_subscribe(subscribing("open:x", FakeSession("alice"))) is None
    on_publish, on_subscribe = node.on_publish, node.on_subscribe
    refused: list[Callable[[], Awaitable[object]]] = [
        lambda: on_publish(publishing("open:x", FakeSession("alice"))),  # not subscribed
        lambda: on_publish(publishing("closed:x", FakeSession("alice", ("closed:x",)))),
        lambda: on_subscribe(subscribing("open:x", FakeSession(""))),  # anonymous
        lambda: on_subscribe(subscribing("closed:x", FakeSession("alice"))),
    ]
    for attempt in refused:
        with pytest.raises(CommandError) as caught:
            await attempt()
        assert caught.value.error == ERROR_PERMISSION_DENIED
