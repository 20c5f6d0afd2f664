"""Fixtures shared by the test suites: servers on free ports, TLS certificates, time bounds."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from wavecast.asyncio import Server, ServerConnection, serve

from .utils import MS, TIMEOUT_FACTOR

StartServer = Callable[..., Awaitable[Server]]

_TESTS = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Bound every test that uses sockets, so a hang fails one test instead of the run."""
    for item in items:
        uses_sockets = any(_TESTS / suite in item.path.parents for suite in ("asyncio", "interop"))
        if uses_sockets and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(30 * TIMEOUT_FACTOR))


async def echo(connection: ServerConnection) -> None:
    """Send every message back."""
    async for message in connection:
        await connection.send(message)


@pytest.fixture
async def start_server() -> AsyncIterator[StartServer]:
    """Start servers on 127.0.0.1 with a free port; close them when the test ends.

    ``await start_server(handler, **kwargs)`` takes the arguments of ``serve()``; the
    handler defaults to an echo, and ``port`` to a free one.
    """
    servers: list[Server] = []

    async def start(
        handler: Callable[[ServerConnection], Awaitable[None]] = echo, *, port: int = 0, **kwargs: Any
    ) -> Server:
        server = await serve(handler, "127.0.0.1", port, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
        await server.wait_closed(timeout=1000 * MS)


def ws_uri(server: Server, path: str = "/", *, scheme: str = "ws", host: str = "127.0.0.1") -> str:
    """Return the URI of ``server``."""
    return f"{scheme}://{host}:{server.port}{path}"


@dataclass
class Certificates:
    """A private CA and a server certificate for 127.0.0.1 and localhost."""

    ca: trustme.CA
    server_cert: trustme.LeafCert
    ca_path: Path
    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.server_cert.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.ca.configure_trust(context)
        return context


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Certificates]:
    """Issue certificates from a throwaway CA with ``trustme``."""
    ca = trustme.CA()
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    directory = tmp_path_factory.mktemp("certs")
    ca_path = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    cert_path = directory / "cert.pem"
    server_cert.cert_chain_pems[0].write_to_path(str(cert_path))
    key_path = directory / "key.pem"
    server_cert.private_key_pem.write_to_path(str(key_path))
    yield Certificates(ca, server_cert, ca_path, cert_path, key_path)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """One private redis-server for the session; tests keep apart with their own key prefix."""
    from .redis_server import redis_server_or_skip

    with redis_server_or_skip() as server:
        yield server
