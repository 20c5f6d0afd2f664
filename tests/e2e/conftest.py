"""Fixtures of the end-to-end tests: Nodes served over real sockets, and their clients.

Each test starts its own :class:`~wavecast.realtime.Node` with the configuration it needs,
served by :func:`wavecast.serve` on 127.0.0.1 with a free port. Clients are the real
Centrifugo SDKs: centrifuge-python (``make_client``, from ``tests/conftest.py``), and
centrifuge-js through ``js/client.js``; or the raw protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..support.js import JSClient, StartJS
from ..support.raw import OpenRaw, RawClient
from ..support.servers import Listening, NodeServer, StartNode
from ..support.tools import node


@pytest.fixture
async def start_node() -> AsyncIterator[StartNode]:
    """Start Nodes with :meth:`NodeServer.start`'s arguments; stop them when the test ends."""
    started: list[NodeServer] = []

    async def start(*args: Any, **kwargs: Any) -> NodeServer:
        server = await NodeServer.start(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


@pytest.fixture
async def start_js() -> AsyncIterator[StartJS]:
    """Start ``js/client.js`` with its options (``url``, ``token``...); stop it when the test ends."""
    path = node("centrifuge", "ws")
    clients: list[JSClient] = []

    async def start(**options: Any) -> JSClient:
        client = await JSClient.start(path, **options)
        clients.append(client)
        return client

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def open_raw() -> AsyncIterator[OpenRaw]:
    """Open :class:`RawClient` connections to a server; close them when the test ends."""
    clients: list[RawClient] = []

    async def open_raw(server: Listening, **kwargs: Any) -> RawClient:
        client = await RawClient.open(server.ws_url, **kwargs)
        clients.append(client)
        return client

    yield open_raw
    for client in clients:
        await client.close()
