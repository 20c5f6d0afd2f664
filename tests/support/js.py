"""Node scripts that speak JSON lines over their stdio: the peers of ``tests/interop/js`` and
the centrifuge-js driver ``tests/e2e/js/client.js``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from .timing import MS
from .tools import ROOT

__all__ = ["JSClient", "NodeScript", "RunNode", "StartJS", "spawn"]


async def spawn(node: str, script: Path, *args: str) -> asyncio.subprocess.Process:
    """Start ``node script args`` from the repository root, with pipes for stdio."""
    return await asyncio.create_subprocess_exec(
        node,
        str(script),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        limit=2**24,  # a line can carry a large message
    )


async def _end(process: asyncio.subprocess.Process, finish: Callable[[], Awaitable[object]]) -> None:
    """Close stdin, which makes the scripts exit, and ``finish`` (wait for the exit); kill the
    script if it takes longer than 2 seconds."""
    assert process.stdin is not None
    if not process.stdin.is_closing():
        process.stdin.close()
    try:
        async with asyncio.timeout(2000 * MS):
            await finish()
    except TimeoutError:
        process.kill()
        await finish()


class NodeScript:
    """A Node script started by a test, which reads its JSON lines as it goes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []

    @classmethod
    async def start(cls, node: str, script: Path, *args: str, stdin: bytes | None = None) -> NodeScript:
        """Start ``script`` with ``args``; write ``stdin`` to it and close it, if given."""
        started = cls(await spawn(node, script, *args))
        if stdin is not None:
            assert started.process.stdin is not None
            started.process.stdin.write(stdin)
            await started.process.stdin.drain()
            started.process.stdin.close()
        return started

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

    async def close(self) -> None:
        """End the script; ``communicate()`` reads its pipes to their end, which closes their transports."""
        await _end(self.process, self.process.communicate)


class JSClient:
    """``tests/e2e/js/client.js`` running centrifuge-js under Node: commands go as JSON lines on
    its stdin, events come back as JSON lines on its stdout, read as they come."""

    SCRIPT = ROOT / "tests" / "e2e" / "js" / "client.js"

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._ids = 0
        self._reader = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def start(cls, node: str, **options: Any) -> JSClient:
        """Start the script with its options (``url``, ``token``...)."""
        return cls(await spawn(node, cls.SCRIPT, json.dumps(options)))

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.events.append(json.loads(line))
            self._changed.set()
        self._changed.set()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [event for event in self.events if event["event"] == name]

    async def wait(
        self,
        name: str,
        predicate: Callable[[dict[str, Any]], bool] = lambda event: True,
        *,
        timeout: float = 5000 * MS,
    ) -> dict[str, Any]:
        """Return the first event ``name`` that satisfies ``predicate``, waiting for it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for event in self.events:
                        if event["event"] == name and predicate(event):
                            return event
                    if self._reader.done():
                        stderr = await self.process.stderr.read() if self.process.stderr else b""
                        raise AssertionError(f"node exited: {stderr.decode(errors='replace')}")
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = [event["event"] for event in self.events]
            raise AssertionError(f"timed out waiting for {name}; events: {seen}") from None

    async def call(self, op: str, **args: Any) -> dict[str, Any]:
        """Run one operation of the SDK and return its ``result`` event (``ok``, ``value``/``error``)."""
        self._ids += 1
        call_id = self._ids
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"id": call_id, "op": op, **args}).encode() + b"\n")
        await self.process.stdin.drain()
        return await self.wait("result", lambda event: event["id"] == call_id)

    async def ok(self, op: str, **args: Any) -> Any:
        """Run one operation of the SDK, which must succeed; return its ``value``."""
        result = await self.call(op, **args)
        assert result["ok"], result
        return result["value"]

    async def close(self) -> None:
        """End the script (it disconnects and exits), then read what is left of its output."""
        await _end(self.process, self.process.wait)
        await self._reader
        if self.process.stderr is not None:
            await self.process.stderr.read()


#: ``await start_js(**options)``, the fixture of ``tests/e2e/conftest.py``.
StartJS = Callable[..., Awaitable[JSClient]]
#: ``await run_node(script, *args, stdin=None)``, the fixture of ``tests/interop/conftest.py``.
RunNode = Callable[..., Awaitable[NodeScript]]
