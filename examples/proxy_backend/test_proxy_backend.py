"""The FastAPI backend of the event proxies, run as users run it: uvicorn and wavecast serve in
subprocesses, with the example's wavecast.toml, and centrifuge-python clients carrying the
backend's session cookie."""

from __future__ import annotations

import sys
import tomllib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from centrifuge import ReplyError
from tests.support.cleanup import stopping
from tests.support.config import write_config
from tests.support.http import http
from tests.support.processes import LoggedServer, free_port
from tests.support.sdk import Clients, start_subscription, subscribe
from tests.support.serve import ServeProcess
from tests.support.tools import ROOT

HERE = Path(__file__).parent


def configured(backend_port: int) -> dict[str, Any]:
    """The example's wavecast.toml, pointed at a backend on ``backend_port``."""
    config = tomllib.loads((HERE / "wavecast.toml").read_text())
    for proxy in config["proxy"].values():
        proxy["endpoint"] = proxy["endpoint"].replace(":3000/", f":{backend_port}/")
    config["server"]["host"] = "127.0.0.1"
    return config


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, str]]:
    """The backend and wavecast serve, ready: their base URL and WebSocket URL."""
    backend_port = free_port()
    uvicorn = [sys.executable, "-m", "uvicorn", "examples.proxy_backend.app:app", "--port", str(backend_port)]

    def backend() -> LoggedServer:
        return LoggedServer(uvicorn, backend_port, name="proxy backend", cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})

    def server() -> ServeProcess:
        return ServeProcess(write_config(tmp_path, configured(backend_port)), free_port(), cwd=tmp_path)

    async with (
        stopping(backend, LoggedServer.kill, ready=LoggedServer.wait_ready) as start_backend,
        stopping(server, ServeProcess.kill, ready=ServeProcess.wait_ready) as start_server,
    ):
        running_backend = await start_backend()
        running = await start_server()
        yield running_backend.url, running.ws_url


async def test_a_chat_decided_by_the_backend(served: tuple[str, str], make_client: Clients) -> None:
    backend, ws_url = served
    session = (await http("POST", f"{backend}/login", {"user": "ann"})).json()["session"]
    await http("POST", f"{backend}/join", {"user": "ann", "room": "lobby"})

    client, events = make_client(ws_url, headers={"Cookie": f"session={session}"})
    await client.connect()
    assert (await events.wait("connected")).data == {"rooms": ["lobby"]}
    sub = await subscribe(client, "rooms:lobby")
    assert (await sub.wait("subscribed")).data == {"members": ["ann"]}
    await client.publish("rooms:lobby", {"text": "  hello  "})
    publication = await sub.wait("publication")
    assert publication.pub.data == {"text": "hello", "author": "Ann"}
    with pytest.raises(ReplyError) as refused:
        await client.publish("rooms:lobby", {"text": " "})
    assert (refused.value.code, refused.value.message) == (1002, "say something")
    assert (await client.rpc("whoami", {})).data == {"user": "ann"}

    # A room Ann didn't join, and a visitor without a session, are refused by the backend.
    closed = await start_subscription(client, "rooms:staff")
    refused_sub = await closed.wait("unsubscribed")
    assert (refused_sub.code, refused_sub.reason) == (1001, "join staff first")
    stranger, stranger_events = make_client(ws_url)
    await stranger.connect()
    disconnected = await stranger_events.wait("disconnected")
    assert (disconnected.code, disconnected.reason) == (1000, "sign in first")
