"""Fixtures for the hardening tests: a wavecast server in a subprocess, its memory, bystanders.

The server runs in its own process (:mod:`tests.hardening.serverproc`) so that its resident
memory can be read from ``/proc/<pid>/status`` without counting what the test process
allocates to attack it. Memory is a measurement, never a timing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from wavecast.asyncio import ClientConnection, connect

from ..asyncio.peers import RawSocket, open_raw_client
from ..utils import MS

ROOT = Path(__file__).parents[2]
MIB = 2**20
KIB = 2**10


def _status(pid: int, field: str) -> int:
    """Return a ``kB`` field of ``/proc/<pid>/status``, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * KIB
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class Memory:
    """The peak resident memory of a process over a stretch of a test.

    The kernel's high-water mark (VmHWM) is reset at the start, through ``clear_refs``, so
    that the peak covers only the attack; where that isn't allowed, VmRSS is sampled instead.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.start = 0
        self._hwm_reset = False
        self._sampled = 0
        self._sampler: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Memory:
        try:
            with open(f"/proc/{self.pid}/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # reset the peak RSS to the current RSS
            self._hwm_reset = True
        except OSError:
            self._hwm_reset = False
        self.start = _status(self.pid, "VmRSS")
        self._sampled = self.start
        self._sampler = asyncio.create_task(self._sample())
        return self

    async def _sample(self) -> None:
        while True:
            self._sampled = max(self._sampled, _status(self.pid, "VmRSS"))
            await asyncio.sleep(5 * MS)

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._sampler is not None
        self._sampler.cancel()
        try:
            await self._sampler
        except asyncio.CancelledError:
            pass
        self._sampled = max(self._sampled, _status(self.pid, "VmRSS"))

    @property
    def peak(self) -> int:
        if self._hwm_reset:
            return max(self._sampled, _status(self.pid, "VmHWM"))
        return self._sampled

    @property
    def growth(self) -> int:
        """How far the resident memory rose above where it started, in bytes, at its peak."""
        return self.peak - self.start

    def __str__(self) -> str:
        return f"{self.growth / MIB:.1f} MiB growth (from {self.start / MIB:.1f} MiB)"


#: Measured growth per test, printed at the end of the session (``-rA`` or ``-s`` shows it).
MEASUREMENTS: dict[str, str] = {}


def record(case: str, memory: Memory, detail: str = "") -> None:
    """Keep a measurement for the summary at the end of the session."""
    MEASUREMENTS[case] = f"{memory}; {detail}" if detail else str(memory)


@dataclass
class ServerProcess:
    """A server started by :mod:`tests.hardening.serverproc`."""

    process: subprocess.Popen[bytes]
    port: int
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def uri(self, path: str = "/") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    def memory(self) -> Memory:
        return Memory(self.pid)

    def fds(self) -> int:
        return len(list(Path(f"/proc/{self.pid}/fd").iterdir()))

    async def http(self, path: str) -> tuple[int, bytes]:
        """Make a plain HTTP request; return the status and the body."""
        raw = await open_raw_client(self.port)
        try:
            await raw.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n\r\n".encode())
            async with asyncio.timeout(2000 * MS):
                status, _, body = await raw.read_response()
        finally:
            raw.close()
        return status, body

    async def stats(self) -> dict[str, Any]:
        status, body = await self.http("/stats")
        assert status == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    async def wait_for(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """Poll the stats until ``predicate`` holds; return them."""
        try:
            async with asyncio.timeout(5000 * MS):
                while not predicate(stats := await self.stats()):
                    await asyncio.sleep(10 * MS)
        except TimeoutError:
            stats = await self.stats()
            summary = {key: stats[key] for key in ("connections", "open", "handlers", "errors")}
            raise AssertionError(f"timed out waiting for {what}: {summary}") from None
        return stats

    async def wait_idle(self, keep: int = 0) -> dict[str, Any]:
        """Wait until ``keep`` connections are open and as many handlers run, besides the stats request."""
        return await self.wait_for(
            lambda s: s["connections"] == keep and s["handlers"] == keep, f"{keep} connections to remain"
        )

    def stop(self) -> str:
        """Terminate the server; return what it wrote to stderr."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.stderr.read_text()


SpawnServer = Callable[..., Awaitable[ServerProcess]]


@pytest.fixture
async def spawn_server(tmp_path: Path) -> AsyncIterator[SpawnServer]:
    """Start servers in subprocesses: ``await spawn_server(**serve_kwargs)``.

    ``limits`` is a dict of :class:`~wavecast.Limits` fields. When the test ends, each server
    is terminated, and its stderr must hold no traceback.
    """
    servers: list[ServerProcess] = []

    async def spawn(**config: Any) -> ServerProcess:
        stderr = tmp_path / f"server{len(servers)}.stderr"
        with stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.hardening.serverproc", json.dumps(config)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        server = ServerProcess(process, 0, stderr)
        servers.append(server)
        if not line:
            raise AssertionError(f"the server didn't start: {server.stop()}")
        server.port = json.loads(line)["port"]
        return server

    yield spawn
    for server in servers:
        stderr = server.stop()
        assert "Traceback" not in stderr, stderr


class Bystander:
    """A well-behaved client that must keep being served while another one attacks.

    It holds one connection open from before the attack, and opens a fresh one for each
    check, so both existing and new clients are checked.
    """

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.client: ClientConnection | None = None
        self.checks = 0

    async def __aenter__(self) -> Bystander:
        self.client = await connect(self.server.uri("/"), open_timeout=2000 * MS)
        await self.check()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self.client is not None
        await self.client.close()

    async def check(self) -> None:
        """Echo a message on the long-lived connection and on a new one."""
        assert self.client is not None
        self.checks += 1
        async with asyncio.timeout(2000 * MS):
            message = f"still served #{self.checks}"
            await self.client.send(message)
            assert await self.client.recv() == message
            async with connect(self.server.uri("/"), open_timeout=2000 * MS) as fresh:
                await fresh.send(message)
                assert await fresh.recv() == message


@dataclass
class Pumped:
    """What :func:`pump` managed to send, and why it stopped."""

    sent: int
    stalled: bool = False
    reset: bool = False


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def pump(raw: RawSocket, chunks: Iterable[bytes], *, stall: float = 300 * MS) -> Pumped:
    """Send ``chunks`` as fast as the peer takes them.

    Stops early when the peer takes nothing for ``stall`` seconds (it stopped reading) or
    resets the connection. ``stall`` bounds how long the test waits; nothing asserts it.
    """
    loop = asyncio.get_running_loop()
    sock = raw.sock
    result = Pumped(0)
    for chunk in chunks:
        view = memoryview(chunk)
        while view:
            try:
                n = sock.send(view)
            except BlockingIOError:
                writable: asyncio.Future[None] = loop.create_future()
                loop.add_writer(sock.fileno(), _set_once, writable)
                try:
                    async with asyncio.timeout(stall):
                        await writable
                except TimeoutError:
                    result.stalled = True
                    return result
                finally:
                    loop.remove_writer(sock.fileno())
                continue
            except (ConnectionResetError, BrokenPipeError):
                result.reset = True
                return result
            result.sent += n
            view = view[n:]
    return result


async def crowd(attack: Callable[[], Awaitable[object]], count: int, *, concurrency: int = 50) -> None:
    """Run ``attack`` ``count`` times, ``concurrency`` at a time (the server's backlog is 100)."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with semaphore:
            await attack()

    async with asyncio.timeout(20000 * MS):
        await asyncio.gather(*(one() for _ in range(count)))


async def measure_crowd(
    server: ServerProcess,
    bystander: Bystander,
    case: str,
    run: Callable[[], Awaitable[object]],
    *,
    count: int,
    bound: int = 4 * MIB,
    warmups: int = 1,
) -> Memory:
    """Measure the server while ``run`` drives ``count`` hostile connections, and bound its growth.

    ``warmups`` runs warm the server up, so that what any crowd of this size allocates and frees
    is paid before the measurement (the heap grows to a plateau, then stays); the next run is
    measured, with a bystander checked while it lasts. With ``count`` connections, a leak of
    ``bound / count`` bytes per connection shows.
    """
    for _ in range(warmups):
        await run()
        await server.wait_idle(keep=1)
    async with server.memory() as memory:
        attack = asyncio.create_task(run())
        await bystander.check()
        await attack
        await server.wait_idle(keep=1)
    record(case, memory, f"{count} connections, {memory.growth // count} B each at most")
    assert memory.growth < bound, f"{case}: {memory}"
    return memory


def small_sndbuf(raw: RawSocket, size: int = 16 * KIB) -> None:
    """Shrink the kernel's send buffer, so that a stalled peer is detected after fewer bytes."""
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print the memory measured in each hardening test."""
    if MEASUREMENTS:
        terminalreporter.section("hardening: server memory")
        for name, text in MEASUREMENTS.items():
            terminalreporter.write_line(f"{name}: {text}")
