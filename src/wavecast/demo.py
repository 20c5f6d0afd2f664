"""The echo demo that ``make run`` starts: a page at ``/`` and an echo endpoint at ``/echo``."""

from __future__ import annotations

import asyncio
import importlib.resources
import logging
import signal

from .asyncio.server import ServerConnection, http_response, serve
from .protocol.events import Request, Response

__all__ = ["echo", "process_request", "run_demo"]

logger = logging.getLogger("wavecast.demo")


def _page() -> bytes:
    return importlib.resources.files("wavecast").joinpath("static/echo.html").read_bytes()


async def echo(connection: ServerConnection) -> None:
    """Send every message back."""
    async for message in connection:
        await connection.send(message)


def process_request(connection: ServerConnection, request: Request) -> Response | None:
    """Serve the page at ``/`` and ``/health``; let upgrades to ``/echo`` through."""
    if request.path == "/echo" and "upgrade" in ", ".join(request.headers.get_all("Connection")).lower():
        return None
    if request.method not in ("GET", "HEAD"):
        return http_response(405, "Method Not Allowed\n", headers={"Allow": "GET"})
    if request.path == "/":
        return http_response(200, _page(), content_type="text/html; charset=utf-8")
    if request.path == "/health":
        return http_response(200, "OK\n")
    if request.path == "/echo":
        return None  # answered by the handshake's own 426
    return http_response(404, "Not Found\n")


async def run_demo(host: str, port: int) -> None:
    """Serve the echo demo until SIGINT or SIGTERM."""
    async with serve(echo, host, port, process_request=process_request) as server:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.close)
        logger.info("echo demo on http://%s:%d/ (Ctrl-C to stop)", host, server.port)
        await server.serve_forever()
