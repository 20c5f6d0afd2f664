"""Fixtures for the interop tests: third-party peers, present or explained.

A missing peer (Node, the ws package, Chromium) skips its tests with a reason on a
developer's machine, and fails them when ``CI=true``, so CI can't pass by skipping.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from ..utils import MS

ROOT = Path(__file__).parents[2]
JS = Path(__file__).parent / "js"
CHROMIUM = Path("/usr/bin/chromium")


def require(condition: object, reason: str) -> None:
    """Skip the test when ``condition`` is false, or fail it under CI."""
    if not condition:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (required when CI=true)", pytrace=False)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def node() -> str:
    """The path of ``node``, with the ``ws`` package installed by ``npm ci``."""
    path = shutil.which("node")
    require(path, "node isn't installed")
    require((ROOT / "node_modules" / "ws" / "package.json").is_file(), "the ws package is missing: run `npm ci`")
    assert path is not None
    return path


class NodeProcess:
    """A Node script started by a test, which reads its JSON lines."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    async def next_event(self, timeout: float = 5000 * MS) -> dict[str, Any]:
        """Return the next JSON line; fail if the script exits or says nothing in time."""
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            line = await self.process.stdout.readline()
        if not line:
            stderr = await self.process.stderr.read() if self.process.stderr else b""
            raise AssertionError(f"node exited: {stderr.decode(errors='replace')}")
        event: dict[str, Any] = json.loads(line)
        self.events.append(event)
        return event

    async def wait_for(self, name: str, timeout: float = 5000 * MS) -> dict[str, Any]:
        """Return the next event called ``name``, skipping others (they stay in ``events``)."""
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next_event()
                if event["event"] == name:
                    return event

    async def finish(self, timeout: float = 5000 * MS) -> list[dict[str, Any]]:
        """Read every remaining line until the script exits; return all events."""
        async with asyncio.timeout(timeout):
            assert self.process.stdout is not None
            async for line in self.process.stdout:
                self.events.append(json.loads(line))
            await self.process.wait()
        return self.events


RunNode = Callable[..., Awaitable[NodeProcess]]


@pytest.fixture
async def run_node(node: str) -> AsyncIterator[RunNode]:
    """Start ``tests/interop/js/<script>`` with arguments and what to write to its stdin.

    A script still running when the test ends gets EOF on stdin, then is killed.
    """
    processes: list[asyncio.subprocess.Process] = []

    async def run(script: str, *args: str, stdin: bytes | None = None) -> NodeProcess:
        process = await asyncio.create_subprocess_exec(
            node,
            str(JS / script),
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=ROOT,
            limit=2**24,  # a line can carry a large message
        )
        processes.append(process)
        if stdin is not None:
            assert process.stdin is not None
            process.stdin.write(stdin)
            await process.stdin.drain()
            process.stdin.close()
        return NodeProcess(process)

    yield run
    for process in processes:
        # EOF on stdin makes a server script exit; communicate() reads the pipes to their
        # end, which closes their transports.
        assert process.stdin is not None
        if not process.stdin.is_closing():
            process.stdin.close()
        try:
            async with asyncio.timeout(2000 * MS):
                await process.communicate()
        except TimeoutError:
            process.kill()
            await process.communicate()
