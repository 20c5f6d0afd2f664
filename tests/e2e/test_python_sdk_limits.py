"""centrifuge-python against a Node over real sockets: the per-client rate limits.

A client that sends commands, or publications, faster than its limits allow gets error 111
"too many requests" (temporary) for the excess, stays connected, and another client is served
as usual: the buckets are per client.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from centrifuge import ClientState, ReplyError

from wavecast.realtime import ChannelOptions, Node, RPCContext

from ..support.config import node_config
from ..support.sdk import Clients, subscribe
from ..support.servers import StartNode
from ..support.timing import wait_until

pytestmark = pytest.mark.interop

CHAT = ChannelOptions(allow_subscribe_for_client=True, allow_publish_for_subscriber=True)


def _echo(node: Node) -> None:
    @node.rpc("echo")
    async def echo(ctx: RPCContext) -> Any:
        return ctx.data


def _outcomes(results: list[Any]) -> tuple[int, list[ReplyError]]:
    """Count the successes; return them and the errors, which must all be ReplyError."""
    errors = [result for result in results if isinstance(result, BaseException)]
    assert all(isinstance(error, ReplyError) for error in errors), errors
    return len(results) - len(errors), errors  # type: ignore[return-value]


async def test_commands_too_fast_get_111_and_another_client_is_unaffected(
    start_node: StartNode, make_client: Clients
) -> None:
    running = await start_node(node_config(command_rate=5, command_burst=10), setup=_echo)
    flooder, _ = await make_client.connected(running.ws_url, "flooder")
    other, _ = await make_client.connected(running.ws_url, "other")

    # 60 RPCs at once: the burst passes, a few more as the bucket refills, the rest get 111.
    results = await asyncio.gather(*(flooder.rpc("echo", n) for n in range(60)), return_exceptions=True)
    ok, errors = _outcomes(results)
    assert 10 <= ok < 60, ok
    assert {(error.code, error.message, error.temporary) for error in errors} == {(111, "too many requests", True)}
    assert flooder.state == ClientState.CONNECTED

    # The other client's bucket is its own: all of its burst goes through.
    assert [(await other.rpc("echo", n)).data for n in range(10)] == list(range(10))
    assert other.state == ClientState.CONNECTED


async def test_a_publication_flood_is_limited_and_another_client_is_unaffected(
    start_node: StartNode, make_client: Clients
) -> None:
    running = await start_node(node_config(channel=CHAT, publication_rate=2, publication_burst=5))
    flooder, _ = await make_client.connected(running.ws_url, "flooder")
    other, _ = await make_client.connected(running.ws_url, "other")
    flooder_sub = await subscribe(flooder, "room")
    other_sub = await subscribe(other, "room")
    room = flooder.get_subscription("room")
    assert room is not None

    results = await asyncio.gather(*(room.publish({"n": n}) for n in range(40)), return_exceptions=True)
    ok, errors = _outcomes(results)
    assert 5 <= ok < 40, ok
    assert {error.code for error in errors} == {111}
    # Only what was accepted went out, to every subscriber.
    await wait_until(lambda: len(other_sub.data) == ok, what="the accepted publications")
    assert len(flooder_sub.data) <= ok

    # The other client publishes at once: the flood spent the flooder's bucket only.
    mine = other.get_subscription("room")
    assert mine is not None
    await mine.publish({"from": "other"})
    await wait_until(lambda: other_sub.data[-1:] == [{"from": "other"}], what="the other's publication")
    assert flooder.state == other.state == ClientState.CONNECTED
