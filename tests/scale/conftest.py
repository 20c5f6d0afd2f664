"""Fixtures for scale-out tests: private redis-servers, ``wavecast serve`` nodes sharing one,
haproxy in front of them, a switchable TCP relay, and a report of what chaos tests counted.

Everything listens on 127.0.0.1 on free ports, lives in the test's temporary directory and is
stopped by its PID (a node's process group, for ``--workers``) when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import resource
import shutil
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import pytest
from centrifuge import Client, JoinContext, LeaveContext, SubscribingContext, SubscriptionErrorContext

from wavecast.server.config import Config, parse_config

from ..redis_server import RedisServer, redis_server_or_skip
from ..server.conftest import (  # noqa: F401 - fixtures shared with the server tests
    API_KEY,
    BASE_CONFIG,
    HttpAnswer,
    SubEvents as ServerSubEvents,
    free_port,
    http,
    make_client,
    merge,
    start_wavecast,
    wavecast_command,
)
from ..utils import MS, TIMEOUT_FACTOR

ROOT = Path(__file__).parents[2]
HAPROXY_EXAMPLE = ROOT / "examples" / "deploy" / "haproxy.cfg"

#: Namespaces of the scale tests on top of :data:`BASE_CONFIG`'s ``chat`` and ``news``:
#: ``rec`` keeps history and recovers every subscriber.
SCALE_NAMESPACES: dict[str, Any] = {
    "rec": {
        "history_size": 10_000,
        "history_ttl": 600.0,
        "force_recovery": True,
        "presence": True,
        "allow_subscribe_for_client": True,
        "allow_publish_for_subscriber": True,
    },
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Bound every scale test, so a hang fails one test instead of the run."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(60 * TIMEOUT_FACTOR))


# --- redis-server -----------------------------------------------------------------------------


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone, without persistence."""
    with redis_server_or_skip() as server:
        yield server


@pytest.fixture
def persistent_redis() -> Iterator[RedisServer]:
    """A redis-server of this test alone with appendfsync always: what it acknowledged survives a restart."""
    with redis_server_or_skip(persistent=True) as server:
        yield server


async def restart(server: RedisServer, down: float = 0.0) -> None:
    """Stop redis-server, leave it down ``down`` seconds, start it again on the same port."""
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(down)
    await asyncio.to_thread(server.start)


# --- configuration ----------------------------------------------------------------------------


def cluster_config(redis: RedisServer, prefix: str = "scale", **sections: Any) -> dict[str, Any]:
    """The configuration of every node of a deployment: :data:`BASE_CONFIG`, the Redis engine
    on ``redis`` and the ``rec`` namespace, with ``sections`` merged in."""
    engine = {"engine": {"type": "redis", "redis_url": redis.url, "redis_prefix": prefix}}
    base = merge(merge(BASE_CONFIG, {"namespaces": SCALE_NAMESPACES}), engine)
    return merge(base, sections)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"can't write {value!r} as TOML")


def to_toml(data: Mapping[str, Any], path: tuple[str, ...] = ()) -> str:
    """Write tables of scalars and lists (what a wavecast configuration holds) as TOML."""
    scalars = [f"{key} = {_toml_value(value)}" for key, value in data.items() if not isinstance(value, Mapping)]
    lines = [f"[{'.'.join(path)}]", *scalars] if path and scalars else scalars
    for key, value in data.items():
        if isinstance(value, Mapping):
            lines.append(to_toml(value, (*path, key)))
    return "\n".join(lines) + "\n"


def write_config(directory: Path, data: Mapping[str, Any], name: str = "wavecast.toml") -> Path:
    path = directory / name
    path.write_text(to_toml(data))
    return path


# --- the server API -----------------------------------------------------------------------------


async def api(base_url: str, method: str, body: Any = None, *, timeout: float = 5000 * MS) -> Any:
    """Call ``POST /api/<method>`` of a node (or of haproxy); return the decoded JSON answer."""
    answer: HttpAnswer = await http(
        "POST", f"{base_url}/api/{method}", body if body is not None else {}, {"X-API-Key": API_KEY}, timeout=timeout
    )
    assert answer.status == 200, (answer.status, answer.text)
    return answer.json()


# --- ``wavecast serve`` nodes -------------------------------------------------------------------


class NodeProcess:
    """``wavecast serve`` in a subprocess of its own process group, so that stopping it by its PID
    stops the workers it supervises too. Its output goes to a log file."""

    def __init__(self, config_path: Path, port: int, *, cwd: Path, name: str, env: Mapping[str, str]) -> None:
        self.port = port
        self.name = name
        self.log_path = cwd / f"{name}-{port}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [*wavecast_command(), "serve", "--config", str(config_path), "--port", str(port)],
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "WAVECAST_CLIENT__NAME": name, **env},
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    async def wait_ready(self, timeout: float = 15_000 * MS) -> None:
        """Wait until ``/ready`` answers 200; fail if the process exits first."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if not self.running:
                        raise AssertionError(f"{self.name} exited with {self.process.returncode}:\n{self.log}")
                    with contextlib.suppress(OSError):
                        if (await http("GET", self.url + "/ready", timeout=500 * MS)).status == 200:
                            return
                    await asyncio.sleep(20 * MS)
        except TimeoutError:
            raise AssertionError(f"{self.name} isn't ready:\n{self.log}") from None

    def send_signal(self, sig: int) -> None:
        if self.running:
            self.process.send_signal(sig)

    async def wait_exit(self, timeout: float = 15_000 * MS) -> int:
        try:
            async with asyncio.timeout(timeout):
                while self.running:
                    await asyncio.sleep(10 * MS)
        except TimeoutError:
            raise AssertionError(f"{self.name} didn't exit:\n{self.log}") from None
        return self.process.returncode

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 15_000 * MS) -> int:
        """Send ``sig`` and wait for the process to exit; return its status."""
        self.send_signal(sig)
        return await self.wait_exit(timeout)

    def kill(self) -> None:
        """SIGKILL the whole process group (the node and any worker it started)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self._log.close()


StartNodes = Callable[..., Awaitable[list[NodeProcess]]]


@pytest.fixture
async def start_nodes(tmp_path: Path) -> AsyncIterator[StartNodes]:
    """Start ``wavecast serve`` nodes from one configuration and wait until each is ready.

    ``await start_nodes(config, count=2, ports=None, env=None)``: ``config`` is a table
    (see :func:`cluster_config`) or a path; node ``i`` is named ``node<i>`` (its connect
    replies say so). Processes still running when the test ends are killed.
    """
    processes: list[NodeProcess] = []

    async def start(
        config: Mapping[str, Any] | Path,
        count: int = 1,
        *,
        ports: list[int] | None = None,
        env: Mapping[str, str] | None = None,
        wait: bool = True,
    ) -> list[NodeProcess]:
        path = config if isinstance(config, Path) else write_config(tmp_path, config)
        ports = ports or [free_port() for _ in range(count)]
        started = [
            NodeProcess(path, port, cwd=tmp_path, name=f"node{len(processes) + i + 1}", env=env or {})
            for i, port in enumerate(ports)
        ]
        processes.extend(started)
        if wait:
            await asyncio.gather(*(node.wait_ready() for node in started))
        return started

    yield start
    for process in processes:
        process.kill()


# --- haproxy ------------------------------------------------------------------------------------

HAPROXY = shutil.which("haproxy") or ("/usr/sbin/haproxy" if os.access("/usr/sbin/haproxy", os.X_OK) else None)


def haproxy_config(frontend_port: int, backend_ports: list[int], example: Path = HAPROXY_EXAMPLE) -> str:
    """``examples/deploy/haproxy.cfg`` with its addresses replaced: the deployment users run,
    on this test's ports. Fails if the example no longer has the lines this relies on."""
    text = example.read_text()
    bind = "bind 127.0.0.1:8000"
    assert bind in text, f"{example}: expected {bind!r}"
    text = text.replace(bind, f"bind 127.0.0.1:{frontend_port}")
    servers = [line for line in text.splitlines() if line.strip().startswith("server node")]
    assert 0 < len(backend_ports) <= len(servers), f"{example}: expected {len(backend_ports)} server lines or more"
    for index, line in enumerate(servers):
        if index < len(backend_ports):
            address = line.split()[2]
            text = text.replace(line, line.replace(address, f"127.0.0.1:{backend_ports[index]}"))
        else:
            text = text.replace(line + "\n", "")
    return text


class Haproxy:
    """haproxy in the foreground (``-db``), from a rendered configuration file."""

    def __init__(self, config_path: Path, port: int, log_path: Path) -> None:
        assert HAPROXY is not None
        self.port = port
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.process = subprocess.Popen(
            [HAPROXY, "-db", "-f", str(config_path)], stdout=self._log, stderr=subprocess.STDOUT
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def wait_ready(self, timeout: float = 10_000 * MS) -> None:
        """Wait until haproxy routes ``/ready`` to a node that answers 200."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self.process.poll() is not None:
                        raise AssertionError(f"haproxy exited with {self.process.returncode}:\n{self.log}")
                    with contextlib.suppress(OSError):
                        if (await http("GET", self.url + "/ready", timeout=500 * MS)).status == 200:
                            return
                    await asyncio.sleep(20 * MS)
        except TimeoutError:
            raise AssertionError(f"haproxy isn't ready:\n{self.log}") from None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Listening(Protocol):
    """A node haproxy can send to: a subprocess or a server in this process."""

    @property
    def port(self) -> int: ...


StartHaproxy = Callable[[Sequence[Listening]], Awaitable[Haproxy]]


@pytest.fixture
async def start_haproxy(tmp_path: Path) -> AsyncIterator[StartHaproxy]:
    """Start haproxy from ``examples/deploy/haproxy.cfg`` in front of nodes; stop it at the end.

    Skips when haproxy isn't installed, except under ``CI=true`` where it fails.
    """
    if HAPROXY is None:
        if os.environ.get("CI") == "true":
            pytest.fail("haproxy is missing: `make test` installs it")
        pytest.skip("haproxy is not installed")
    started: list[Haproxy] = []

    async def start(nodes: Sequence[Listening]) -> Haproxy:
        port = free_port()
        path = tmp_path / f"haproxy-{port}.cfg"
        path.write_text(haproxy_config(port, [node.port for node in nodes]))
        proxy = Haproxy(path, port, tmp_path / f"haproxy-{port}.log")
        started.append(proxy)
        await proxy.wait_ready()
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


# --- a TCP relay that can be pointed elsewhere ----------------------------------------------------


class Relay:
    """Forwards TCP connections to a node; :meth:`switch` points it at another one and cuts the
    connections it carries, as a DNS change or a failover would."""

    def __init__(self, target: int | None) -> None:
        #: The port connections go to; ``None`` closes them as they arrive.
        self.target = target
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/connection/websocket"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.target is None:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, upstream_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        tasks = [asyncio.create_task(pipe(reader, upstream_writer)), asyncio.create_task(pipe(upstream_reader, writer))]
        self._tasks.update(tasks)
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.difference_update(tasks)
        self._writers.difference_update((writer, upstream_writer))

    def switch(self, target: int | None) -> None:
        """Send new connections to ``target`` (``None``: refuse them); abort the current ones."""
        self.target = target
        for writer in list(self._writers):
            writer.transport.abort()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.switch(self.target)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.fixture
async def relay() -> AsyncIterator[Callable[[int], Awaitable[Relay]]]:
    relays: list[Relay] = []

    async def start(target: int) -> Relay:
        started = Relay(target)
        await started.start()
        relays.append(started)
        return started

    yield start
    for started in relays:
        await started.close()


# --- file descriptors -------------------------------------------------------------------------------


@pytest.fixture
def raise_nofile() -> Iterator[int]:
    """Raise this process's RLIMIT_NOFILE to its hard limit for the test; return the new limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        yield hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- what chaos tests count -------------------------------------------------------------------------

_REPORTS = pytest.StashKey[list[str]]()


@dataclasses.dataclass
class ChaosReport:
    """What one test published, what the server acknowledged, and what each client received.

    :meth:`check` asserts that no acknowledged publication was lost and none was received
    twice; the counts are printed (``-s``/``-rA``) and gathered at the end of the run.
    """

    name: str
    published: int = 0
    acknowledged: set[int] = dataclasses.field(default_factory=set)
    failed: int = 0
    #: Per client: the sequence numbers received, in order, duplicates included.
    received: dict[str, list[int]] = dataclasses.field(default_factory=dict)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    def lost(self, client: str) -> set[int]:
        return self.acknowledged - set(self.received.get(client, []))

    def duplicates(self, client: str) -> int:
        seen = self.received.get(client, [])
        return len(seen) - len(set(seen))

    def summary(self) -> str:
        counts = [len(set(seen)) for seen in self.received.values()] or [0]
        lost = sum(len(self.lost(client)) for client in self.received)
        duplicated = sum(self.duplicates(client) for client in self.received)
        # Publications whose call failed (a reply lost as Redis went away) but that were stored
        # and delivered all the same: allowed, they just weren't acknowledged.
        unacknowledged = set().union(*map(set, self.received.values())) - self.acknowledged if self.received else set()
        extra = "".join(f" {key}={value}" for key, value in self.extra.items())
        return (
            f"{self.name}: published={self.published} acknowledged={len(self.acknowledged)} failed={self.failed}"
            f" clients={len(self.received)} received/client min={min(counts)} max={max(counts)}"
            f" lost={lost} duplicated={duplicated} received_unacknowledged={len(unacknowledged)}{extra}"
        )

    def check(self) -> None:
        lost = {client: sorted(self.lost(client))[:10] for client in self.received if self.lost(client)}
        duplicated = {client: self.duplicates(client) for client in self.received if self.duplicates(client)}
        assert not lost, f"acknowledged publications lost (first few per client): {lost}"
        assert not duplicated, f"publications received twice: {duplicated}"


@pytest.fixture
def chaos_report(request: pytest.FixtureRequest) -> Iterator[Callable[[str], ChaosReport]]:
    """Make a :class:`ChaosReport`; its summary is printed when the test ends and at the end of the run."""
    reports: list[ChaosReport] = []

    def make(name: str) -> ChaosReport:
        report = ChaosReport(name)
        reports.append(report)
        return report

    yield make
    for report in reports:
        line = f"{request.node.nodeid}: {report.summary()}"
        print(line)
        request.config.stash.setdefault(_REPORTS, []).append(line)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_REPORTS, [])
    if lines:
        terminalreporter.section("scale-out counts")
        for line in lines:
            terminalreporter.write_line(line)


def node_config(redis: RedisServer, prefix: str = "scale", **sections: Any) -> Config:
    """A :class:`Config` of :func:`cluster_config` on port 0, for nodes in this process."""
    config = parse_config(cluster_config(redis, prefix, **sections))
    return dataclasses.replace(config, server=dataclasses.replace(config.server, port=0))


# --- centrifuge-python ----------------------------------------------------------------------------


class SubEvents(ServerSubEvents):
    """A subscription's events, its errors, resubscriptions, joins and leaves included."""

    async def on_join(self, ctx: JoinContext) -> None:
        self.record("join", ctx)

    async def on_leave(self, ctx: LeaveContext) -> None:
        self.record("leave", ctx)

    async def on_subscribing(self, ctx: SubscribingContext) -> None:
        self.record("subscribing", ctx)

    async def on_error(self, ctx: SubscriptionErrorContext) -> None:
        self.record("error", ctx)


async def start_subscription(client: Client, channel: str, **kwargs: Any) -> SubEvents:
    """Start subscribing ``client`` to ``channel`` without waiting; resubscribe quickly."""
    events = SubEvents()
    kwargs.setdefault("min_resubscribe_delay", 0.05)
    kwargs.setdefault("max_resubscribe_delay", 0.5)
    sub = client.new_subscription(channel, events, **kwargs)
    await sub.subscribe()
    return events


async def subscribe(client: Client, channel: str, **kwargs: Any) -> SubEvents:
    """Subscribe ``client`` to ``channel``; wait until subscribed."""
    events = await start_subscription(client, channel, **kwargs)
    await events.wait("subscribed", timeout=10_000 * MS)
    return events
