"""History under hostile clients: what reading costs, and the bounds on what publishing keeps.

``wavecast serve`` on the memory engine runs in its own process, so that its resident memory
is measured alone (see :class:`~tests.support.memory.Memory`). Clients speak the JSON
protocol over :func:`wavecast.connect`, with no SDK in between.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from wavecast.asyncio import ClientConnection, connect

from ..support.config import write_config
from ..support.memory import MIB, Memory, bounded
from ..support.processes import free_port
from ..support.serve import ServeProcess
from ..support.timing import MS

CHAT = {
    "history_size": 1000,
    "history_ttl": 300.0,
    "force_recovery": True,
    "allow_subscribe_for_client": True,
    "allow_subscribe_for_anonymous": True,
    "allow_publish_for_client": True,
    "allow_publish_for_anonymous": True,
    "allow_history_for_client": True,
    "allow_history_for_anonymous": True,
}


class Raw:
    """One client of the JSON protocol: a command, then its reply."""

    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection
        self.ids = itertools.count(1)
        self.pushes: list[dict[str, Any]] = []

    async def call(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        command_id = next(self.ids)
        await self.connection.send(json.dumps({"id": command_id, method: params}))
        async with asyncio.timeout(5000 * MS):
            while True:
                message = await self.connection.recv()
                assert isinstance(message, str)
                for line in message.splitlines():
                    reply = json.loads(line)
                    if reply.get("id") == command_id:
                        return reply
                    if "push" in reply:
                        self.pushes.append(reply["push"])


Open = Callable[[], Awaitable[Raw]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[tuple[ServeProcess, Open]]]]:
    """Start ``wavecast serve`` with ``[engine]`` options; open anonymous clients to it."""
    processes: list[ServeProcess] = []
    connections: list[ClientConnection] = []

    async def start(**engine: Any) -> tuple[ServeProcess, Open]:
        config = {
            "server": {"host": "127.0.0.1"},
            "client": {"allow_anonymous_connect_without_token": True, "command_rate": False, "publication_rate": False},
            "http_api": {"insecure": True},
            "engine": {"type": "memory", **engine},
            "namespaces": {"chat": CHAT},
        }
        path = write_config(tmp_path, config, f"wavecast-{len(processes)}.toml")
        process = ServeProcess(path, free_port(), cwd=tmp_path)
        processes.append(process)
        await process.wait_ready()

        async def open_client() -> Raw:
            connection = await connect(process.ws_url)
            connections.append(connection)
            client = Raw(connection)
            assert "connect" in await client.call("connect", {})
            return client

        return process, open_client

    yield start
    for connection in connections:
        await connection.close()
    for process in processes:
        process.kill()
        assert "Traceback" not in process.log, process.log


async def test_reading_channels_never_published_to_keeps_nothing(serve: Any) -> None:
    server, open_client = await serve()
    clients = [await open_client() for _ in range(10)]
    rounds = 500

    async def churn(client: Raw) -> None:
        for _ in range(rounds):
            channel = f"chat:{secrets.token_hex(8)}"
            reply = await client.call("subscribe", {"channel": channel})
            assert reply["subscribe"]["positioned"], reply
            await client.call("unsubscribe", {"channel": channel})

    await churn(clients[0])  # the allocator's own warm-up isn't what is measured
    async with Memory(server.process.pid) as memory:
        await asyncio.gather(*(churn(client) for client in clients))
    count = len(clients) * rounds
    # Each read kept a stream, 1.4 KiB, before reading created nothing.
    bounded("subscribing to channels never published to", memory, 2 * MIB, f"{count} channels read")


async def test_one_user_cant_hold_more_history_than_the_limit(serve: Any) -> None:
    server, open_client = await serve(memory_max_user_bytes=4 * MIB)
    greedy, other = await open_client(), await open_client()
    data = {"blob": "x" * 60_000}
    refused = 0
    async with Memory(server.process.pid) as memory:
        for n in range(353):
            reply = await greedy.call("publish", {"channel": f"chat:{n % 7}", "data": data})
            if "error" in reply:
                assert reply["error"]["code"] == 106, reply
                refused += 1
    kept = 353 - refused
    assert 50 < kept < 80
    bounded("one client publishing 353 x 60 KB", memory, 4 * MIB + 3 * MIB, f"{kept} kept under a 4 MiB limit")
    # The limit is that user's alone.
    reply = await other.call("publish", {"channel": "chat:0", "data": data})
    assert "publish" in reply, reply


async def test_history_in_all_stays_within_the_limit(serve: Any) -> None:
    server, open_client = await serve(memory_max_bytes=8 * MIB)
    clients = [await open_client() for _ in range(6)]
    data = {"blob": "y" * 60_000}
    async with Memory(server.process.pid) as memory:
        for n in range(60):
            publications = (
                client.call("publish", {"channel": f"chat:{i}-{n}", "data": data}) for i, client in enumerate(clients)
            )
            await asyncio.gather(*publications)
    bounded(
        "6 clients publishing 360 x 60 KB to 360 channels", memory, 8 * MIB + 4 * MIB, "under an 8 MiB limit in all"
    )
    # The least recently published streams went; the newest are kept whole.
    newest = await clients[0].call("history", {"channel": "chat:0-59", "limit": -1})
    oldest = await clients[0].call("history", {"channel": "chat:0-0", "limit": -1})
    assert newest["history"]["offset"] == 1 and len(newest["history"]["publications"]) == 1
    assert oldest["history"].get("offset", 0) == 0
