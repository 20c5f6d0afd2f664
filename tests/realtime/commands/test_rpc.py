"""commands.rpc: handlers by method, the fallback hook, results, errors and the in-flight limit."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from wavecast.codes import Disconnect, Error
from wavecast.exceptions import CommandError, DisconnectError
from wavecast.realtime import Node, RPCContext

from ..helpers import Client, ConnectClient, MakeNode


async def test_rpc_handler(node: Node, connect: ConnectClient) -> None:
    contexts: list[RPCContext] = []

    @node.rpc("sum")
    async def add(context: RPCContext) -> Any:
        contexts.append(context)
        return {"sum": 3}

    client = await connect(node)
    assert await client.result("rpc", {"method": "sum", "data": [1, 2]}) == {"data": {"sum": 3}}
    [context] = contexts
    assert (context.session, context.method, context.data) == (client.session, "sum", b"[1, 2]")
    assert client.session.rpc_in_flight == 0


@pytest.mark.parametrize(
    ("returned", "expected"),
    [(b'{"raw":true}', {"data": {"raw": True}}), (bytearray(b"[1]"), {"data": [1]}), (None, {}), (0, {"data": 0})],
)
async def test_rpc_results(node: Node, connect: ConnectClient, returned: Any, expected: dict[str, Any]) -> None:
    @node.rpc("get")
    async def get(context: RPCContext) -> Any:
        return returned

    client = await connect(node)
    assert await client.result("rpc", {"method": "get"}) == expected


async def test_rpc_result_that_isnt_json_disconnects_a_json_client(node: Node, connect: ConnectClient) -> None:
    # Embedding it would send the client a message that isn't JSON; Centrifugo disconnects
    # a client whose reply it can't encode with 3506.
    @node.rpc("blob")
    async def blob(context: RPCContext) -> Any:
        return b"\x00\xffnot json"

    client = await connect(node)
    client.new()
    await client.send({"id": 9, "rpc": {"method": "blob"}})
    for _ in range(10):
        await asyncio.sleep(0)
    assert client.new() == []
    assert client.closed_with == 3506


async def test_rpc_without_data(node: Node, connect: ConnectClient) -> None:
    seen: list[bytes | None] = []

    @node.rpc("x")
    async def x(context: RPCContext) -> None:
        seen.append(context.data)

    client = await connect(node)
    await client.result("rpc", {"method": "x"})
    assert seen == [None]


async def test_on_rpc_handles_other_methods(node: Node, connect: ConnectClient) -> None:
    async def fallback(context: RPCContext) -> Any:
        return {"method": context.method}

    node.on_rpc = fallback

    @node.rpc("own")
    async def own(context: RPCContext) -> Any:
        return "own"

    client = await connect(node)
    assert await client.result("rpc", {"method": "own"}) == {"data": "own"}
    assert await client.result("rpc", {"method": "other"}) == {"data": {"method": "other"}}


async def test_method_not_found(node: Node, connect: ConnectClient) -> None:
    client = await connect(node)
    assert await client.error("rpc", {"method": "nope"}) == 104


async def test_rpc_errors(node: Node, connect: ConnectClient) -> None:
    @node.rpc("fail")
    async def fail(context: RPCContext) -> None:
        raise CommandError(Error(404, "no such thing"))

    @node.rpc("ban")
    async def ban(context: RPCContext) -> None:
        raise DisconnectError(Disconnect(4501, "banned"))

    client = await connect(node)
    assert (await client.call("rpc", {"method": "fail"}))["error"] == {"code": 404, "message": "no such thing"}
    assert client.session.rpc_in_flight == 0
    await client.send({"id": 9, "rpc": {"method": "ban"}})
    for _ in range(100):
        if client.closed_with is not None:
            break
        await asyncio.sleep(0)
    assert client.closed_with == 4501


def slow_rpc(node: Node) -> asyncio.Event:
    """Register the RPC method ``slow``, which answers 1 once the returned event is set."""
    release = asyncio.Event()

    @node.rpc("slow")
    async def slow(context: RPCContext) -> Any:
        await release.wait()
        return 1

    return release


async def calls_ended(client: Client) -> None:
    """Let the client's RPC calls finish, for at most 100 turns of the loop."""
    for _ in range(100):
        if client.session.rpc_in_flight == 0:
            break
        await asyncio.sleep(0)


async def test_rpc_in_flight_limit(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(rpc_in_flight_limit=1)
    release = slow_rpc(node)
    client = await connect(node)
    await client.send({"id": 100, "rpc": {"method": "slow"}})
    await asyncio.sleep(0)
    assert client.session.rpc_in_flight == 1
    # The slow call runs beside later commands: a ping is answered meanwhile.
    assert await client.result("ping") == {}
    assert await client.error("rpc", {"method": "slow"}) == 106
    release.set()
    await calls_ended(client)
    assert [r for r in client.transport.replies if r.get("id") == 100] == [{"id": 100, "rpc": {"data": 1}}]
    assert client.session.rpc_in_flight == 0


async def test_no_rpc_in_flight_limit(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(rpc_in_flight_limit=None)
    release = slow_rpc(node)
    client = await connect(node)
    for n in range(1, 41):  # past the default of 16
        await client.send({"id": n, "rpc": {"method": "slow"}})
    await asyncio.sleep(0)
    assert client.session.rpc_in_flight == 40
    release.set()
    await calls_ended(client)
    assert len([r for r in client.transport.replies if r.get("rpc") == {"data": 1}]) == 40
