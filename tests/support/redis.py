"""A private redis-server for tests: a free port, a temporary directory, stopped by its PID."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .processes import free_port, terminate, wait_answering
from .tools import redis_server

__all__ = ["RedisServer", "private_redis", "private_redis_shards", "restart"]


class RedisServer:
    """A redis-server process; ``start()`` and ``stop()`` may be called again (a restart).

    Args:
        persistent: keep data across restarts with an append-only file fsynced on every write,
            so that what Redis acknowledged survives a restart.
    """

    def __init__(self, program: str, directory: Path, *, persistent: bool = False) -> None:
        self.program = program
        self.directory = directory
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [
                self.program,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *persistence,
                "--dir",
                str(self.directory),
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_answering(self.process, self.port, b"+PONG", b"PING\r\n")

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, timeout=10)
        self.process = None


@contextmanager
def private_redis(*, persistent: bool = False) -> Iterator[RedisServer]:
    """Run a private redis-server; skip when it isn't installed, except under ``CI=true``."""
    program = redis_server()
    with tempfile.TemporaryDirectory(prefix="wavecast-redis-") as directory:
        server = RedisServer(program, Path(directory), persistent=persistent)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def private_redis_shards(count: int = 3) -> Iterator[list[RedisServer]]:
    """Run ``count`` private redis-servers, the shards of one sharded engine."""
    program = redis_server()
    with tempfile.TemporaryDirectory(prefix="wavecast-redis-shards-") as directory:
        servers: list[RedisServer] = []
        try:
            for index in range(count):
                (Path(directory) / str(index)).mkdir()
                servers.append(RedisServer(program, Path(directory) / str(index)))
                servers[-1].start()
            yield servers
        finally:
            for server in servers:
                server.stop()


async def restart(server: RedisServer, down: float = 0.0) -> None:
    """Stop redis-server, leave it down ``down`` seconds, start it again on the same port."""
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(down)
    await asyncio.to_thread(server.start)
