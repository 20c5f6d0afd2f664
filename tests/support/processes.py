"""Subprocesses of the tests: free ports, servers that log to a file, stopped by their PID."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from .http import http
from .servers import Listening
from .timing import MS

__all__ = ["LoggedServer", "free_port", "terminate", "wait_answering"]


def free_port() -> int:
    """A port that was free a moment ago, for a subprocess that can't be told to use port 0."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_answering(process: subprocess.Popen[bytes], port: int, greeting: bytes, hello: bytes = b"") -> None:
    """Wait until ``process`` answers on 127.0.0.1:``port`` with ``greeting`` (after sending
    ``hello``), for 10 seconds at most.

    Raises:
        RuntimeError: it exited or didn't answer in time.
    """
    name = Path(str(process.args[0] if isinstance(process.args, list) else process.args)).name
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(hello)
                if sock.recv(len(greeting)).startswith(greeting):
                    return
        except OSError:
            pass
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        time.sleep(0.05)
    raise RuntimeError(f"{name} didn't start")


def free_port_pair() -> int:
    """A port P such that P and P + 1 were both free a moment ago, for a server that listens on
    both (the channel bench's publisher is on the next port)."""
    while True:
        port = free_port()
        with socket.socket() as first, socket.socket() as second:
            try:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port


def terminate(process: subprocess.Popen[bytes], timeout: float = 5) -> None:
    """Ask ``process`` to exit with SIGTERM; kill it if it's still there after ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class LoggedServer(Listening):
    """A server in a subprocess on 127.0.0.1:``port`` that answers ``GET /ready`` with 200 once
    it serves; its output goes to a log file in ``cwd``.

    With ``new_session``, the process leads a process group of its own, and :meth:`kill` stops
    the whole group: the workers a supervisor started go with it.
    """

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        *,
        name: str,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        new_session: bool = False,
    ) -> None:
        self.port = port
        self.name = name
        self.new_session = new_session
        self.log_path = cwd / f"{name.replace(' ', '-')}-{port}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=new_session,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

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
        """Wait for the process to exit; return its status."""
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
        """SIGKILL the process (its whole group, with ``new_session``), and close its log."""
        if self.new_session:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        elif self.running:
            self.process.kill()
        self.process.wait()
        self._log.close()
