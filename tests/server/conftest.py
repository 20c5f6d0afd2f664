"""Fixtures for the standalone server's tests: configurations, servers in-process or as
``wavecast serve`` subprocesses, plain HTTP, and centrifuge-python clients.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import jwt
import pytest
from centrifuge import (
    Client,
    ClientEventHandler,
    ClientState,
    ConnectedContext,
    ConnectingContext,
    DisconnectedContext,
    ErrorContext,
    PublicationContext,
    ServerPublicationContext,
    ServerSubscribedContext,
    ServerUnsubscribedContext,
    SubscribedContext,
    SubscriptionEventHandler,
    UnsubscribedContext,
)
from playwright.async_api import Browser

from wavecast.asyncio import Server
from wavecast.realtime import WEBSOCKET_PATH, Node
from wavecast.server.app import App
from wavecast.server.config import Config, parse_config
from wavecast.server.serve import shutdown, start_server

from ..browser import launch_chromium
from ..utils import MS, TIMEOUT_FACTOR

ROOT = Path(__file__).parents[2]
WAVECAST = ROOT / ".venv" / "bin" / "wavecast"

#: Signs the tokens of these tests; 32 bytes or more, so PyJWT doesn't warn.
SECRET = "wavecast-server-tests-hmac-secret-of-32-bytes"
API_KEY = "server-tests-api-key"
ADMIN_PASSWORD = "server-tests-admin-password"

#: What every test server starts from: a ``chat`` namespace with presence and history, and
#: a ``news`` namespace with neither.
BASE_CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "shutdown_timeout": 2.0},
    "client": {"token_hmac_secret_key": SECRET},
    "http_api": {"key": API_KEY},
    "admin": {"enabled": True, "password": ADMIN_PASSWORD},
    "channel": {"allow_subscribe_for_client": True},
    "namespaces": {
        "chat": {
            "presence": True,
            "join_leave": True,
            "history_size": 20,
            "history_ttl": 300.0,
            "allow_subscribe_for_client": True,
            "allow_publish_for_subscriber": True,
            "allow_presence_for_subscriber": True,
            "allow_history_for_subscriber": True,
        },
        "news": {"allow_subscribe_for_client": True},
    },
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Bound every server test, so a hang fails one test instead of the run."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(30 * TIMEOUT_FACTOR))


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``overrides`` merged in, table by table."""
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def make_config(**sections: Any) -> Config:
    """A :class:`Config` parsed from :data:`BASE_CONFIG` with ``sections`` merged in, on port 0."""
    config = parse_config(merge(BASE_CONFIG, sections))
    return dataclasses.replace(config, server=dataclasses.replace(config.server, port=0))


def make_token(user: str = "42", *, ttl: float = 3600, secret: str = SECRET, **claims: Any) -> str:
    """An HS256 connection token for ``user``."""
    return jwt.encode({"sub": user, "exp": int(time.time() + ttl), **claims}, secret, algorithm="HS256")


def free_port() -> int:
    """A port that was free a moment ago, for a subprocess that can't be told to use port 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def basic_auth(password: str, user: str = "admin") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


# --- plain HTTP -----------------------------------------------------------------------------------


@dataclasses.dataclass
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def _request(
    method: str,
    url: str,
    body: bytes | None,
    headers: Mapping[str, str],
    timeout: float,
    context: ssl.SSLContext | None,
) -> HttpAnswer:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers))
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            return HttpAnswer(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as error:
        with error:
            return HttpAnswer(error.code, dict(error.headers.items()), error.read())


def _request_from(source: str, method: str, url: str, headers: Mapping[str, str], timeout: float) -> HttpAnswer:
    parts = urllib.parse.urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection = HTTPConnection(parts.hostname, parts.port, timeout=timeout, source_address=(source, 0))
    try:
        connection.request(method, path, headers=dict(headers))
        response = connection.getresponse()
        return HttpAnswer(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


async def http_from(
    source: str, method: str, url: str, headers: Mapping[str, str] | None = None, *, timeout: float = 5000 * MS
) -> HttpAnswer:
    """Make one HTTP request without a body from the local address ``source``, such as
    127.0.0.2: another client, as the server sees it."""
    return await asyncio.to_thread(_request_from, source, method, url, dict(headers or {}), timeout)


async def http(
    method: str,
    url: str,
    body: bytes | str | Any = None,
    headers: Mapping[str, str] | None = None,
    *,
    timeout: float = 5000 * MS,
    context: ssl.SSLContext | None = None,
) -> HttpAnswer:
    """Make one HTTP request in a thread; ``body`` is bytes, text, or a value sent as JSON."""
    headers = dict(headers or {})
    if body is not None and not isinstance(body, bytes | str):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    if isinstance(body, str):
        body = body.encode()
    return await asyncio.to_thread(_request, method, url, body, headers, timeout, context)


# --- servers in this process ----------------------------------------------------------------------


@dataclasses.dataclass
class Running:
    """A server started with :func:`wavecast.server.serve.start_server`."""

    config: Config
    server: Server
    app: App
    stopped: bool = False

    @property
    def node(self) -> Node:
        return self.app.node

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WEBSOCKET_PATH}"

    async def get(self, path: str, headers: Mapping[str, str] | None = None) -> HttpAnswer:
        return await http("GET", self.url + path, headers=headers)

    async def post(self, path: str, body: Any = None, headers: Mapping[str, str] | None = None) -> HttpAnswer:
        return await http("POST", self.url + path, body if body is not None else b"", headers=headers)

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await shutdown(self.server, self.app, 1000 * MS)


StartWavecast = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_wavecast() -> AsyncIterator[StartWavecast]:
    """Start the standalone server in this process on a free port; stop it when the test ends.

    ``await start_wavecast(config=None, **sections)``: ``sections`` are merged into
    :data:`BASE_CONFIG`.
    """
    running: list[Running] = []

    async def start(config: Config | None = None, **sections: Any) -> Running:
        config = config if config is not None else make_config(**sections)
        server, app = await start_server(config)
        started = Running(config, server, app)
        running.append(started)
        return started

    yield start
    for started in reversed(running):
        await started.stop()


# --- ``wavecast serve`` in a subprocess -------------------------------------------------------------


def wavecast_command() -> list[str]:
    """The command that runs the CLI: the venv's script, or ``python -m wavecast``."""
    return [str(WAVECAST)] if WAVECAST.exists() else [sys.executable, "-m", "wavecast"]


class ServeProcess:
    """``wavecast serve`` running in a subprocess; its output goes to a log file.

    ``command`` replaces ``wavecast serve`` with another program that takes ``--config`` and
    ``--port`` the same way, such as ``python -m examples.gallery``.
    """

    def __init__(
        self,
        config_path: Path,
        port: int,
        *,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.port = port
        self.log_path = cwd / f"serve-{port}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        command = [*wavecast_command(), "serve"] if command is None else list(command)
        self.process = subprocess.Popen(
            [*command, "--config", str(config_path), "--port", str(port)],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WEBSOCKET_PATH}"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 10_000 * MS) -> None:
        """Wait until ``/ready`` answers 200; fail if the process exits first."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self.process.poll() is not None:
                        raise AssertionError(f"wavecast serve exited with {self.process.returncode}:\n{self.log}")
                    try:
                        answer = await http("GET", self.url + "/ready", timeout=500 * MS)
                    except OSError:
                        answer = None
                    if answer is not None and answer.status == 200:
                        return
                    await asyncio.sleep(20 * MS)
        except TimeoutError:
            raise AssertionError(f"wavecast serve isn't ready:\n{self.log}") from None

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 10_000 * MS) -> int:
        """Send ``sig`` and wait for the process to exit; return its status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            async with asyncio.timeout(timeout):
                while self.process.poll() is None:
                    await asyncio.sleep(10 * MS)
        except TimeoutError:
            raise AssertionError(f"wavecast serve didn't exit after signal {sig}:\n{self.log}") from None
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._log.close()


StartServe = Callable[..., Awaitable[ServeProcess]]


@pytest.fixture
async def start_serve(tmp_path: Path) -> AsyncIterator[StartServe]:
    """Run ``wavecast serve --config <path> --port <port>`` and wait until it's ready.

    ``await start_serve(config_path, port=None, env=None)``; a process still running when the
    test ends is killed.
    """
    processes: list[ServeProcess] = []

    async def start(
        config_path: Path, *, port: int | None = None, env: Mapping[str, str] | None = None
    ) -> ServeProcess:
        process = ServeProcess(config_path, port or free_port(), cwd=tmp_path, env=env)
        processes.append(process)
        await process.wait_ready()
        return process

    yield start
    for process in processes:
        process.kill()


# --- centrifuge-python ------------------------------------------------------------------------------


class Recorder:
    """Records SDK events as ``(name, context)`` and waits for them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def record(self, name: str, ctx: Any) -> None:
        self.events.append((name, ctx))
        self._changed.set()

    def named(self, name: str) -> list[Any]:
        return [ctx for event, ctx in self.events if event == name]

    async def wait(
        self, name: str, predicate: Callable[[Any], bool] = lambda ctx: True, *, timeout: float = 5000 * MS
    ) -> Any:
        """Return the first event ``name`` whose context satisfies ``predicate``, waiting for it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for event, ctx in self.events:
                        if event == name and predicate(ctx):
                            return ctx
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = [event for event, _ in self.events]
            raise AssertionError(f"timed out waiting for {name}; events: {seen}") from None


class ClientEvents(ClientEventHandler, Recorder):
    """A client's connection events, and those of its server-side subscriptions."""

    def __init__(self) -> None:
        Recorder.__init__(self)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        self.record("connecting", ctx)

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.record("connected", ctx)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.record("disconnected", ctx)

    async def on_error(self, ctx: ErrorContext) -> None:
        self.record("error", ctx)

    async def on_subscribed(self, ctx: ServerSubscribedContext) -> None:
        self.record("subscribed", ctx)

    async def on_unsubscribed(self, ctx: ServerUnsubscribedContext) -> None:
        self.record("unsubscribed", ctx)

    async def on_publication(self, ctx: ServerPublicationContext) -> None:
        self.record("publication", ctx)


class SubEvents(SubscriptionEventHandler, Recorder):
    """A subscription's events; :attr:`data` lists the publications' data in order."""

    def __init__(self) -> None:
        Recorder.__init__(self)

    @property
    def data(self) -> list[Any]:
        return [ctx.pub.data for ctx in self.named("publication")]

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.record("subscribed", ctx)

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.record("publication", ctx)

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self.record("unsubscribed", ctx)


MakeClient = Callable[..., tuple[Client, ClientEvents]]


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """Create centrifuge-python clients (not connected yet); disconnect them when the test ends."""
    clients: list[Client] = []

    def make(url: str, **kwargs: Any) -> tuple[Client, ClientEvents]:
        events = ClientEvents()
        kwargs.setdefault("min_reconnect_delay", 0.05)
        kwargs.setdefault("max_reconnect_delay", 0.2)
        kwargs.setdefault("timeout", 5.0 * TIMEOUT_FACTOR)
        client = Client(url, events=events, proxy=None, **kwargs)
        clients.append(client)
        return client, events

    yield make
    for client in clients:
        if client.state != ClientState.DISCONNECTED:
            await client.disconnect()
    # Let the SDK's background tasks (closing transports) finish before the loop ends.
    await asyncio.sleep(20 * MS)
    for client in clients:
        tasks = list(getattr(client, "_background_tasks", ()))
        if tasks:
            await asyncio.wait(tasks, timeout=2000 * MS)


async def subscribe(client: Client, channel: str, **kwargs: Any) -> SubEvents:
    """Subscribe ``client`` to ``channel``; wait until subscribed."""
    events = SubEvents()
    sub = client.new_subscription(channel, events, **kwargs)
    await sub.subscribe()
    await sub.ready(timeout=5.0 * TIMEOUT_FACTOR)
    return events


# --- Chromium -----------------------------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium, driven by Playwright; skipped if missing, except under ``CI=true``."""
    async with launch_chromium() as browser:
        yield browser
