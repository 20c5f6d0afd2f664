"""A lean real-time client for tests with many connections, where an SDK per client costs too much.

It speaks the JSON protocol over :func:`wavecast.connect` and does what an SDK does for one
subscription: connect with a token, subscribe (recovering from its last offset and epoch
after the first time), answer pings, resubscribe on an unsubscribe push of the 2500 range,
and reconnect when the connection ends unless the server said not to. It records what it
received so that a test can count it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from typing import Any

from wavecast import connect
from wavecast.exceptions import ConnectionClosed, InvalidHandshake

__all__ = ["LeanClient"]


class _Resubscribe(Exception):
    """The server unsubscribed us with a code that asks to subscribe again (2500-2999)."""


class _Restart(Exception):
    """The server refused a command or asked us to go: end this connection."""


#: What ends a connection attempt.
_CONNECTION_ERRORS = (OSError, TimeoutError, ConnectionClosed, InvalidHandshake, _Restart)


class LeanClient:
    """One connection with one subscription to ``channel``, reconnecting until stopped: to
    ``url``, or, with a ``fallback``, to each in turn after a connection ends or fails.

    Attributes:
        received: the ``n`` of each publication's ``{"n": ...}`` data, in order of arrival.
        connects: when each connection was established (``time.monotonic()``), and to which node.
        subscribes: each subscribe reply's ``recovered`` and ``was_recovering``.
        errors: connection attempts that failed or ended, with why.
    """

    def __init__(
        self, url: str, token: str, channel: str, *, fallback: str | None = None, open_timeout: float = 30.0
    ) -> None:
        self.urls = [url] if fallback is None else [url, fallback]
        self.token = token
        self.channel = channel
        self.open_timeout = open_timeout
        self.received: list[int] = []
        self.connects: list[tuple[float, str]] = []
        self.subscribes: list[tuple[bool, bool]] = []
        self.errors: list[str] = []
        self.offset = 0
        self.epoch = ""
        self.subscribed = asyncio.Event()
        self._ids = 0
        self._stopping = False
        self._connection: Any = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        if self._connection is not None:
            self._connection.transport.abort()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def drop(self) -> None:
        """Lose the connection without a close frame, as a broken network path would."""
        if self._connection is not None:
            self._connection.transport.abort()

    @property
    def node(self) -> str:
        """The name of the node the latest connection reached."""
        return self.connects[-1][1] if self.connects else ""

    async def _run(self) -> None:
        failures = 0
        attempt = 0
        while not self._stopping:
            self.subscribed.clear()
            url = self.urls[attempt % len(self.urls)]
            attempt += 1
            try:
                async with connect(
                    url, compression=None, ping_interval=None, open_timeout=self.open_timeout
                ) as connection:
                    self._connection = connection
                    failures = 0
                    await self._session(connection)
            except _CONNECTION_ERRORS as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                self._connection = None
            if self._stopping:
                return
            # The first attempt after losing a connection is immediate: every client of a dead
            # node comes back at once, the storm. Later attempts back off, with jitter.
            if failures:
                await asyncio.sleep(random.uniform(0.05, min(2.0, 0.1 * 2**failures)))
            failures += 1

    async def _command(self, connection: Any, **command: Any) -> dict[str, Any]:
        self._ids += 1
        command_id = self._ids
        await connection.send(json.dumps({"id": command_id, **command}))
        while True:
            for reply in await self._read(connection):
                if reply.get("id") == command_id:
                    if "error" in reply:
                        raise _Restart(f"{next(iter(command))}: {reply['error']}")
                    return reply
                self._handle(reply)

    async def _read(self, connection: Any) -> list[dict[str, Any]]:
        message = await connection.recv()
        replies = [json.loads(line) for line in message.splitlines() if line.strip()]
        if any(not reply for reply in replies):
            await connection.send("{}")  # the server's ping; answer with a pong
        return [reply for reply in replies if reply]

    async def _session(self, connection: Any) -> None:
        reply = await self._command(connection, connect={"token": self.token, "name": "lean"})
        self.connects.append((time.monotonic(), reply["connect"].get("node", "")))
        while True:
            await self._subscribe(connection)
            try:
                while True:
                    for reply in await self._read(connection):
                        self._handle(reply)
            except _Resubscribe:
                continue

    async def _subscribe(self, connection: Any) -> None:
        request: dict[str, Any] = {"channel": self.channel}
        if self.epoch:
            request.update(recover=True, offset=self.offset, epoch=self.epoch)
        result = (await self._command(connection, subscribe=request))["subscribe"]
        self.subscribes.append((bool(result.get("recovered")), bool(result.get("was_recovering"))))
        if self.epoch and result.get("epoch") != self.epoch:
            self.offset = 0
        for publication in result.get("publications", []):
            self._publication(publication)
        self.epoch = result.get("epoch", "")
        self.offset = max(self.offset, int(result.get("offset", 0)))
        self.subscribed.set()

    def _handle(self, reply: dict[str, Any]) -> None:
        push = reply.get("push")
        if push is None:
            return
        if "pub" in push:
            self._publication(push["pub"])
        elif "unsubscribe" in push:
            if 2500 <= push["unsubscribe"].get("code", 0) < 3000:
                raise _Resubscribe
            self._stopping = True
            raise _Restart(f"unsubscribed: {push['unsubscribe']}")
        elif "disconnect" in push:
            raise _Restart(f"disconnected: {push['disconnect']}")

    def _publication(self, publication: dict[str, Any]) -> None:
        offset = int(publication.get("offset", 0))
        self.offset = max(self.offset, offset)
        data = publication.get("data")
        if isinstance(data, dict) and "n" in data:
            self.received.append(int(data["n"]))
