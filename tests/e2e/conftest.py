"""Fixtures of the end-to-end tests: Nodes served over real sockets, and their clients.

Each test starts its own :class:`~wavecast.realtime.Node` with the configuration it needs,
served by :func:`wavecast.serve` on 127.0.0.1 with a free port. Clients are the real
Centrifugo SDKs: centrifuge-python (``make_client``) and centrifuge-js through ``js/client.js``
(``start_js``), both from ``tests/conftest.py``; or the raw protocol.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from ..support.cleanup import stopping
from ..support.config import merge
from ..support.raw import OpenRaw, RawClient
from ..support.redis import RedisServer
from ..support.servers import AppServer, NodeServer, StartNode, StartWavecast


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


@pytest.fixture(params=["memory", "redis", "nats"])
def start_on_engine(request: pytest.FixtureRequest, start_wavecast: StartWavecast) -> StartWavecast:
    """``await start_on_engine(**sections)``: the standalone server on the memory engine, then on
    Redis (the session's redis-server, a key prefix of its own), then on NATS with Redis (the
    session's nats-server beside it)."""

    async def start(**sections: Any) -> AppServer:
        if request.param != "memory":
            redis: RedisServer = request.getfixturevalue("redis_server")
            engine = {"type": request.param, "redis_url": redis.url, "redis_prefix": f"e2e{id(request)}"}
            if request.param == "nats":
                engine["nats_url"] = request.getfixturevalue("nats_server").url
            sections = merge(sections, {"engine": engine})
        return await start_wavecast(**sections)

    return start
