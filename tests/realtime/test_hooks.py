"""hooks: an application's hooks, set with the decorators."""

from __future__ import annotations

from wavecast.realtime import Node


async def test_decorators_set_the_hooks() -> None:
    node = Node()

    async def hook(context: object) -> None:
        return None

    assert node.connecting(hook) is hook and node.on_connecting is hook
    assert node.subscribing(hook) is hook and node.on_subscribe is hook
    assert node.publishing(hook) is hook and node.on_publish is hook
    assert node.disconnected(hook) is hook and node.on_disconnect is hook
    assert node.message(hook) is hook and node.on_message is hook
    assert node.refreshing(hook) is hook and node.on_refresh is hook
    assert node.sub_refreshing(hook) is hook and node.on_sub_refresh is hook
    assert node.rpc("m")(hook) is hook and node.rpc_handlers == {"m": hook}
