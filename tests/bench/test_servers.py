"""The benchmarks' wavecast server: each path does what the wire contract (and memory.py) expect."""

from __future__ import annotations

import pytest

from wavecast.asyncio import connect

from ..support.servers import StartServer, ws_uri
from ..support.timing import wait_until
from ..support.tools import ROOT, load_script

SERVER = load_script(ROOT / "bench" / "servers" / "wavecast_server.py")


@pytest.mark.parametrize("path", ["/echo", "/echo-sink"])
async def test_echo(start_server: StartServer, path: str) -> None:
    server = await start_server(SERVER.handler, limits=SERVER.LIMITS, ping_interval=None)
    async with connect(ws_uri(server, path)) as client:
        await client.send("text")
        await client.send(b"\x00binary")
        assert [await client.recv(), await client.recv()] == ["text", b"\x00binary"]
        if path == "/echo-sink":
            # The sink keeps the connection: its handler returned.
            await wait_until(lambda: not server._handlers, what="the handler to return")
            (connection,) = server.connections
            assert connection.request is None and connection.response is None
            await client.send("still")
            assert await client.recv() == "still"
