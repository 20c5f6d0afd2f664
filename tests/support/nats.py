"""A private nats-server for tests: a free port, a temporary directory, stopped by its PID."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .processes import free_port, terminate, wait_answering
from .tools import nats_server

__all__ = ["NatsServer", "kill_and_restart", "private_nats"]


class NatsServer:
    """A nats-server process; ``start()`` and ``stop()`` may be called again (a restart on the
    same port)."""

    def __init__(self, program: str, directory: Path) -> None:
        self.program = program
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.directory / "nats-server.log").open("ab")
        self.process = subprocess.Popen(
            [self.program, "--addr", "127.0.0.1", "--port", str(self.port), "--log", str(log.name)],
            stdout=subprocess.DEVNULL,
            stderr=log,
            cwd=self.directory,
        )
        log.close()
        wait_answering(self.process, self.port, b"INFO ")

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, timeout=10)
        self.process = None

    def kill(self) -> None:
        """Stop it with SIGKILL: what it held for delivery is lost."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None


@contextmanager
def private_nats() -> Iterator[NatsServer]:
    """Run a private nats-server; skip when it isn't installed, except under ``CI=true``."""
    program = nats_server()
    with tempfile.TemporaryDirectory(prefix="wavecast-nats-") as directory:
        server = NatsServer(program, Path(directory))
        server.start()
        try:
            yield server
        finally:
            server.stop()


async def kill_and_restart(server: NatsServer, down: float = 0.0) -> None:
    """SIGKILL nats-server, leave it down ``down`` seconds, start it again on the same port."""
    await asyncio.to_thread(server.kill)
    await asyncio.sleep(down)
    await asyncio.to_thread(server.start)
