"""Fixtures of the end-to-end tests: Nodes served over real sockets, and their clients.

Each test starts its own :class:`~wavecast.realtime.Node` with the configuration it needs,
served by :func:`wavecast.serve` on 127.0.0.1 with a free port. Clients are the real
Centrifugo SDKs: centrifuge-python (``make_client``, from ``tests/conftest.py``), and
centrifuge-js through ``js/client.js``; or the raw protocol.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import pytest

from ..support.cleanup import stopping
from ..support.js import JSClient, StartJS
from ..support.raw import OpenRaw, RawClient
from ..support.servers import NodeServer, StartNode
from ..support.tools import node


@pytest.fixture
async def start_node() -> AsyncIterator[StartNode]:
    """``await start_node(config=None, port=0, setup=None)``: a Node served on 127.0.0.1 (see
    :meth:`NodeServer.start`); stopped when the test ends."""
    async with stopping(NodeServer.start, NodeServer.stop) as start:
        yield start


@pytest.fixture
async def start_js() -> AsyncIterator[StartJS]:
    """``await start_js(**options)``: ``js/client.js`` with its options (``url``, ``token``...);
    stopped when the test ends."""
    async with stopping(functools.partial(JSClient.start, node("centrifuge", "ws")), JSClient.close) as start:
        yield start


@pytest.fixture
async def open_raw() -> AsyncIterator[OpenRaw]:
    """``await open_raw(server, **kwargs)``: a :class:`RawClient` of ``server.ws_url``; closed
    when the test ends."""
    async with stopping(RawClient.open_to, RawClient.close) as open_raw:
        yield open_raw
