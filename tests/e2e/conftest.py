"""Fixtures of the end-to-end tests: Nodes served over real sockets, and their clients.

Each test starts its own :class:`~wavecast.realtime.Node` with the configuration it needs,
served by :func:`wavecast.serve` on 127.0.0.1 with a free port. Clients are the real
Centrifugo SDKs: centrifuge-python (``make_client``) and centrifuge-js through ``js/client.js``
(``start_js``), both from ``tests/conftest.py``; or the raw protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from ..support.cleanup import stopping
from ..support.raw import OpenRaw, RawClient
from ..support.servers import NodeServer, StartNode


@pytest.fixture
async def start_node() -> AsyncIterator[StartNode]:
    """``await start_node(config=None, port=0, setup=None)``: a Node served on 127.0.0.1 (see
    :meth:`NodeServer.start`); stopped when the test ends."""
    async with stopping(NodeServer.start, NodeServer.stop) as start:
        yield start


@pytest.fixture
async def open_raw() -> AsyncIterator[OpenRaw]:
    """``await open_raw(server, **kwargs)``: a :class:`RawClient` of ``server.ws_url``; closed
    when the test ends."""
    async with stopping(RawClient.open_to, RawClient.close) as open_raw:
        yield open_raw
