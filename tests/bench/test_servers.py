"""The benchmarks' wavecast server: each path does what the wire contract (and memory.py) expect."""

from __future__ import annotations

import asyncio

import pytest

from wavecast.asyncio import connect

from ..support.servers import StartServer, ws_uri
from ..support.timing import MS, wait_until
from ..support.tools import ROOT, load_script

SERVER = load_script(ROOT / "bench" / "servers" / "wavecast_server.py")

#: The server's handlers: the default one (a task per /echo and /bcast connection) and --callbacks'.
HANDLERS = {"tasks": SERVER.handler, "callbacks": SERVER.callback_handler}


@pytest.mark.parametrize("handler", HANDLERS)
@pytest.mark.parametrize("path", ["/echo", "/echo-sink"])
async def test_echo(start_server: StartServer, path: str, handler: str) -> None:
    server = await start_server(HANDLERS[handler], limits=SERVER.LIMITS, ping_interval=None)
    async with connect(ws_uri(server, path)) as client:
        await client.send("text")
        await client.send(b"\x00binary")
        assert [await client.recv(), await client.recv()] == ["text", b"\x00binary"]
        if path == "/echo-sink" or handler == "callbacks":
            # The sink keeps the connection: its handler returned, or had no task.
            await wait_until(lambda: not server._handlers, what="the handler to return")
            (connection,) = server.connections
            assert connection.request is None and connection.response is None
            await client.send("still")
            assert await client.recv() == "still"


@pytest.mark.parametrize("handler", HANDLERS)
async def test_bcast_goes_to_every_other_connection(start_server: StartServer, handler: str) -> None:
    server = await start_server(HANDLERS[handler], limits=SERVER.LIMITS, ping_interval=None)
    async with (
        connect(ws_uri(server, "/bcast")) as publisher,
        connect(ws_uri(server, "/bcast")) as first,
        connect(ws_uri(server, "/bcast")) as second,
    ):
        await wait_until(lambda: len(SERVER.subscribers) == 3, what="three subscribers")
        await publisher.send("to the others")
        assert [await first.recv(), await second.recv()] == ["to the others", "to the others"]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(publisher.recv(), 50 * MS)
    await wait_until(lambda: not SERVER.subscribers, what="the subscribers' closes")
