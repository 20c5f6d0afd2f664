"""Fixtures shared by the test suites, as thin wrappers over :mod:`tests.support`: servers on
free ports, TLS certificates, private redis-servers, nats-servers and PostgreSQL servers, SDK
clients, Chromium, time bounds."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.async_api import Browser

from wavecast.server.pgoutbox import schema_sql

from .support.browser import launch_chromium
from .support.cleanup import stopping
from .support.js import JSClient, StartJS
from .support.jwks import JWKSServer
from .support.nats import NatsServer, private_nats
from .support.postgres import PostgresServer, private_postgres
from .support.proxy_backend import ProxyBackend
from .support.redis import RedisCluster, RedisServer, private_redis, private_redis_cluster, private_redis_shards
from .support.sdk import Clients
from .support.servers import AppServer, StartServer, StartWavecast, close_server, serve_locally
from .support.timing import bound_in_time
from .support.tls import Certificates
from .support.tools import node

if TYPE_CHECKING:
    import asyncpg

_TESTS = Path(__file__).parent

#: How long a test of each suite may take before it fails (scaled), unless it says otherwise.
TIME_BOUNDS = {_TESTS / suite: 30 for suite in ("asyncio", "interop", "e2e", "server")} | {_TESTS / "scale": 60}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Bound every test that uses sockets, so a hang fails one test instead of the run."""
    bound_in_time(items, TIME_BOUNDS)


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """``await start_server(handler=echo, port=0, **serve_kwargs)``: serve on 127.0.0.1; close
    the servers when the test ends."""
    async with stopping(serve_locally, close_server) as start:
        yield start


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """Certificates from a throwaway CA."""
    return Certificates.issue(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One private redis-server for the session; tests keep apart with their own key prefix."""
    with private_redis() as server:
        yield server


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    """One private nats-server for the session; tests keep apart with their own subject prefix."""
    with private_nats() as server:
        yield server


@pytest.fixture
def own_nats() -> Iterator[NatsServer]:
    """A nats-server of this test alone, to kill and restart."""
    with private_nats() as server:
        yield server


@pytest.fixture(scope="session")
def redis_shards() -> Iterator[list[RedisServer]]:
    """Three private redis-servers for the session, the shards of the sharded Redis engine."""
    with private_redis_shards(3) as servers:
        yield servers


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A Redis Cluster for the session, three masters and three replicas, never faulted."""
    with private_redis_cluster(3) as cluster:
        yield cluster


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone, without persistence: a restart loses everything."""
    with private_redis() as server:
        yield server


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone with appendfsync always: what it acknowledged survives a restart."""
    with private_redis(persistent=True) as server:
        yield server


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test alone, with an empty database ``wavecast``."""
    with private_postgres() as server:
        yield server


@pytest.fixture
async def outbox_database(own_postgres: PostgresServer) -> AsyncIterator[asyncpg.Connection]:
    """The application's connection to ``own_postgres``, whose database has the outbox table of
    :func:`~wavecast.server.pgoutbox.schema_sql`."""
    import asyncpg

    connection = await asyncpg.connect(own_postgres.dsn)
    await connection.execute(schema_sql())
    yield connection
    await connection.close()


@pytest.fixture
async def start_wavecast() -> AsyncIterator[StartWavecast]:
    """``await start_wavecast(config=None, **sections)``: the standalone server in this process
    (:meth:`AppServer.start`), on a free port; stopped when the test ends."""
    async with stopping(AppServer.start, AppServer.stop) as start:
        yield start


@pytest.fixture
async def make_client() -> AsyncIterator[Clients]:
    """centrifuge-python clients (:class:`~tests.support.sdk.Clients`), disconnected when the test ends."""
    async with Clients() as clients:
        yield clients


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, driven by Playwright; skipped if missing, except under ``CI=true``."""
    async with launch_chromium() as browser:
        yield browser


@pytest.fixture
async def start_js() -> AsyncIterator[StartJS]:
    """``await start_js(**options)``: centrifuge-js in ``e2e/js/client.js`` with its options
    (``url``, ``token``...); stopped when the test ends."""
    async with stopping(
        functools.partial(JSClient.start, node("centrifuge", "ws", "eventsource")), JSClient.close
    ) as start:
        yield start


@pytest.fixture
async def proxy_backend() -> AsyncIterator[ProxyBackend]:
    """An application backend for the event proxies (:class:`ProxyBackend`), stopped when the test ends."""
    backend = await ProxyBackend.start()
    yield backend
    await backend.stop()


@pytest.fixture
async def jwks_server() -> AsyncIterator[JWKSServer]:
    """A JWKS endpoint (:class:`~tests.support.jwks.JWKSServer`) with no keys yet, stopped when the test ends."""
    server = await JWKSServer().start()
    yield server
    await server.stop()
