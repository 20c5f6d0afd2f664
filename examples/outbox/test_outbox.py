"""The shop example end to end: its FastAPI backend under uvicorn, ``wavecast serve`` with the
example's own wavecast.toml, a private PostgreSQL, and a centrifuge-python client watching the
order feed. Placed orders are announced; declined ones neither exist nor are announced."""

from __future__ import annotations

import importlib
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType

import pytest
from tests.support.cleanup import stopping
from tests.support.http import http
from tests.support.postgres import PostgresServer, private_postgres, wait_drained
from tests.support.processes import free_port
from tests.support.sdk import Clients, subscribe
from tests.support.serve import ServeProcess
from tests.support.servers import Uvicorn, serve_uvicorn
from tests.support.timing import MS, wait_until

CONFIG = Path(__file__).with_name("wavecast.toml")


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    with private_postgres() as server:
        yield server


@pytest.fixture
async def backend(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Uvicorn]:
    monkeypatch.setenv("DATABASE_URL", postgres.dsn)
    module: ModuleType = importlib.import_module("examples.outbox.backend")
    async with stopping(serve_uvicorn, Uvicorn.stop) as start:
        yield await start(module.app)
    sys.modules.pop("examples.outbox.backend", None)


@pytest.fixture
async def wavecast(postgres: PostgresServer, backend: Uvicorn, tmp_path: Path) -> AsyncIterator[ServeProcess]:
    """``wavecast serve`` from the example's configuration, on the test's database; it starts
    after the backend, which creates the outbox table."""

    def serve() -> ServeProcess:
        env = {"WAVECAST_OUTBOX__DSN": postgres.dsn, "WAVECAST_SERVER__HOST": "127.0.0.1"}
        return ServeProcess(CONFIG, free_port(), cwd=tmp_path, env=env)

    async with stopping(serve, ServeProcess.kill, ready=ServeProcess.wait_ready) as start:
        yield await start()


async def test_orders_are_announced_once_committed_and_never_when_declined(
    postgres: PostgresServer, backend: Uvicorn, wavecast: ServeProcess, make_client: Clients
) -> None:
    token = (await http("GET", f"{backend.url}/token?user=clerk")).json()["token"]
    client, _ = await make_client.connected(wavecast.ws_url, token=token)
    feed = await subscribe(client, "orders:feed")

    placed = await http("POST", f"{backend.url}/orders", {"customer": "ann", "item": "teapot"})
    assert placed.status == 200
    declined = await http("POST", f"{backend.url}/orders", {"customer": "bob", "item": "kettle", "decline": True})
    assert declined.status == 402
    again = await http("POST", f"{backend.url}/orders", {"customer": "cid", "item": "cups"})

    await wait_until(lambda: len(feed.data) == 2, timeout=5000 * MS, what="two announcements")
    assert feed.data == [
        {"order": placed.json()["order"], "customer": "ann", "item": "teapot"},
        {"order": again.json()["order"], "customer": "cid", "item": "cups"},
    ]
    orders = (await http("GET", f"{backend.url}/orders")).json()
    assert [order["customer"] for order in orders] == ["ann", "cid"]
    await wait_drained(postgres.dsn)
