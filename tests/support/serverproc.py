"""A wavecast server in its own process, so that tests can measure its memory alone.

Run as ``python -m tests.support.serverproc CONFIG`` from the repository root, where
``CONFIG`` is a JSON object of :func:`wavecast.serve` arguments (``limits`` as a dict). It
prints ``{"port": N}`` on one line once it listens, and serves until it's terminated.

Paths choose the behaviour:

- ``/stats``: a plain HTTP answer with a JSON snapshot of the server (open connections other
  than this one, running handlers, how each handler ended, warnings and errors logged).
- ``/page``: a plain HTTP answer of 16 KiB, keeping the connection alive.
- ``/hold``: ``process_request`` waits until ``/release`` is requested, then accepts.
- ``/flood``: the handler sends 64 KiB messages until ``flood_bytes`` are sent, counting them.
- ``/recv``: the handler receives messages and counts them.
- anything else: echo.

A path under ``/crowd`` behaves as the rest of it does (``/crowd/recv`` as ``/recv``), but how
its handler ended is only counted, in ``crowd``, so that a test can open thousands of
connections without the outcomes it keeps growing the memory it measures.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections import Counter
from typing import Any

from wavecast import ConnectionClosed, Limits
from wavecast.asyncio import Server, ServerConnection, http_response, serve
from wavecast.protocol import Request, Response

# Random bytes, so that permessage-deflate can't shrink what /flood sends.
CHUNK = os.urandom(65536)
PAGE = b"page" * 4096


class WarningLog(logging.Handler):
    """Keep every record at WARNING or above, with its traceback."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = f"{record.levelname} {record.name}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.records.append(text)


class App:
    """The server, its handlers and what they saw."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.flood_bytes = int(config.pop("flood_bytes", 200 * 2**20))
        self.config = config
        self.server: Server | None = None
        self.outcomes: list[dict[str, Any]] = []
        self.crowd: Counter[str] = Counter()
        self.flood_sent = 0
        self.received = 0
        self.release = asyncio.Event()
        self.log = WarningLog()
        logging.getLogger().addHandler(self.log)

    def stats(self, connection: ServerConnection) -> dict[str, Any]:
        assert self.server is not None
        return {
            "connections": sum(1 for c in self.server.connections if c is not connection),
            "open": [self.describe(c) for c in self.server.connections if c is not connection],
            "handlers": len(self.server._handlers),
            "outcomes": self.outcomes,
            "crowd": self.crowd,
            "flood_sent": self.flood_sent,
            "received": self.received,
            "errors": self.log.records,
        }

    @staticmethod
    def describe(connection: ServerConnection) -> str:
        """Describe a connection that is still open, to debug one that should have closed."""
        protocol = connection.protocol
        return (
            f"{protocol.state.name} path={connection.request.path if connection.request else None}"
            f" eof_rcvd={protocol.eof_rcvd} eof_sent={protocol.eof_sent}"
            f" closing={connection.transport.is_closing()} reading={connection.transport.is_reading()}"
            f" writing_paused={connection.writing_paused} lost={connection._lost}"
        )

    def process_request(self, connection: ServerConnection, request: Request) -> Any:
        if request.path == "/stats":
            return http_response(200, json.dumps(self.stats(connection)), content_type="application/json")
        if request.path == "/page":
            return http_response(200, PAGE)
        if request.path == "/release":
            self.release.set()
            return http_response(200, "released\n")
        if request.path == "/hold":
            return self.hold()
        return None

    async def hold(self) -> Response | None:
        await self.release.wait()
        return None

    async def handler(self, connection: ServerConnection) -> None:
        assert connection.request is not None
        path = connection.request.path
        behaviour = path.removeprefix("/crowd") or "/"
        # Handlers receive until the connection closes, so each one ends with the exception
        # that tells how.
        outcome: dict[str, Any] = {"path": path, "outcome": "returned"}
        try:
            if behaviour == "/flood":
                while self.flood_sent < self.flood_bytes:
                    await connection.send(CHUNK)
                    self.flood_sent += len(CHUNK)
            elif behaviour == "/recv":
                while True:
                    await connection.recv()
                    self.received += 1
            else:
                while True:
                    await connection.send(await connection.recv())
        except ConnectionClosed as exc:
            outcome.update(
                outcome=type(exc).__name__,
                code=exc.code,
                sent_code=exc.sent_code,
                rcvd_then_sent=exc.rcvd_then_sent,
            )
            raise
        finally:
            if path.startswith("/crowd"):
                self.crowd[f"{outcome['outcome']} {outcome.get('code')} sent {outcome.get('sent_code')}"] += 1
            else:
                self.outcomes.append(outcome)

    async def run(self) -> None:
        config = dict(self.config)
        if "limits" in config:
            config["limits"] = Limits(**config["limits"])
        self.server = await serve(self.handler, "127.0.0.1", 0, process_request=self.process_request, **config)
        print(json.dumps({"port": self.server.port}), flush=True)
        await self.server.serve_forever()


def main() -> None:
    app = App(json.loads(sys.argv[1]))
    asyncio.run(app.run())


if __name__ == "__main__":
    main()
