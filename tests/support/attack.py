"""Hostile clients against a server in a subprocess of its own (:mod:`.serverproc`), whose
memory is measured alone, and a bystander that must keep being served meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wavecast.asyncio import ClientConnection, connect

from .memory import KIB, MIB, Memory, bounded
from .peers import RawSocket, open_raw_client, raw_handshake
from .processes import terminate
from .timing import MS
from .tools import ROOT

__all__ = [
    "Bystander",
    "Pumped",
    "ServerProcess",
    "SpawnServer",
    "attacked",
    "crowd",
    "measure_crowd",
    "outcomes",
    "pump",
    "small_sndbuf",
]


@dataclass
class ServerProcess:
    """A server started by :mod:`tests.support.serverproc`."""

    process: subprocess.Popen[bytes]
    port: int
    stderr: Path

    @classmethod
    async def spawn(cls, config: dict[str, Any], stderr: Path) -> ServerProcess:
        """Start a server with ``config`` (:func:`wavecast.serve` arguments; ``limits`` as a
        dict of :class:`~wavecast.Limits` fields); its stderr goes to the file ``stderr``."""
        with stderr.open("wb") as err:
            process = subprocess.Popen(
                [sys.executable, "-m", "tests.support.serverproc", json.dumps(config)],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        assert process.stdout is not None
        line = await asyncio.to_thread(process.stdout.readline)
        server = cls(process, 0, stderr)
        if not line:
            raise AssertionError(f"the server didn't start: {server.stop()}")
        server.port = json.loads(line)["port"]
        return server

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
        with await open_raw_client(self.port) as raw:
            await raw.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nConnection: close\r\n\r\n".encode())
            async with asyncio.timeout(2000 * MS):
                status, _, body = await raw.read_response()
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

    async def settled(self) -> dict[str, Any]:
        """Wait until no connection is left, check that nothing was logged as a warning or an
        error meanwhile, and return the stats."""
        stats = await self.wait_idle()
        assert stats["errors"] == []
        return stats

    def stop(self) -> str:
        """Terminate the server; return what it wrote to stderr."""
        terminate(self.process)
        assert self.process.stdout is not None
        self.process.stdout.close()
        return self.stderr.read_text()


#: ``await spawn_server(**serve_kwargs)``, the fixture of ``tests/hardening/conftest.py``.
SpawnServer = Callable[..., Awaitable[ServerProcess]]


def outcomes(stats: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """How the handlers of the connections to ``path`` ended, in the stats of a server."""
    return [outcome for outcome in stats["outcomes"] if outcome["path"] == path]


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


@contextlib.asynccontextmanager
async def attacked(server: ServerProcess, path: str | None = None) -> AsyncIterator[tuple[Bystander, RawSocket]]:
    """Yield a :class:`Bystander` of ``server`` and a raw connection to attack it with: a plain
    TCP connection, or a WebSocket one to ``path``. Then close the connection, and check that
    the bystander is still served."""
    async with Bystander(server) as bystander:
        raw = await (open_raw_client(server.port) if path is None else raw_handshake(server.port, path))
        try:
            yield bystander, raw
        finally:
            raw.close()
        await bystander.check()


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
    bounded(case, memory, bound, f"{count} connections, {memory.growth // count} B each at most")
    return memory


def small_sndbuf(raw: RawSocket, size: int = 16 * KIB) -> None:
    """Shrink the kernel's send buffer, so that a stalled peer is detected after fewer bytes."""
    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
