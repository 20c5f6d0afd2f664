"""A raw JSON client on HTTP-streaming, as centrifuge-js's fallback speaks it: the connect as
the stream's body, one reply per line, later commands POSTed to ``/emulation``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from .http import HttpAnswer, http
from .peers import RawSocket, open_raw_client
from .timing import MS
from .tokens import make_token

__all__ = ["StreamClient", "open_raw_stream"]


class StreamClient:
    """One session on ``/connection/http_stream`` of the server at ``url``."""

    def __init__(self, url: str, client: aiohttp.ClientSession, response: aiohttp.ClientResponse) -> None:
        self.url = url
        self._client = client
        self.response = response
        self.session = ""
        self._next_id = 1

    @classmethod
    async def open(
        cls, url: str, user: str = "42", *, headers: dict[str, str] | None = None, read_bufsize: int = 2**16
    ) -> StreamClient:
        """Open a stream to ``url`` (the server's base URL) and connect as ``user``.

        Raises:
            AssertionError: the stream didn't open, or the connect failed.
        """
        client = aiohttp.ClientSession(read_bufsize=read_bufsize)
        connect = json.dumps({"id": 1, "connect": {"token": make_token(user)}})
        try:
            response = await client.post(
                f"{url}/connection/http_stream",
                data=connect,
                headers={"Content-Type": "application/json", **(headers or {})},
            )
            stream = cls(url, client, response)
            assert response.status == 200, response.status
            [reply] = await stream.recv()
            stream.session = reply["connect"]["session"]
            stream._next_id = 2
        except BaseException:
            await client.close()
            raise
        return stream

    async def recv(self, timeout: float = 5000 * MS) -> list[dict[str, Any]]:
        """The next reply or push; ``[]`` once the stream has ended."""
        async with asyncio.timeout(timeout):
            line = await self.response.content.readline()
        return [json.loads(line)] if line.strip() else []

    async def post(self, data: str | bytes, session: str | None = None) -> HttpAnswer:
        """POST ``data`` (the commands' text) to ``/emulation`` for this session, or ``session``."""
        body = {"session": self.session if session is None else session, "node": "", "data": data}
        return await http("POST", f"{self.url}/emulation", body)

    async def command(self, **command: Any) -> dict[str, Any]:
        """Send one command and return its reply, skipping the pushes before it."""
        command_id = self._next_id
        self._next_id += 1
        answer = await self.post(json.dumps({"id": command_id, **command}))
        assert answer.status == 204, answer.text
        while True:
            replies = await self.recv()
            assert replies, "the stream ended"
            if replies[0].get("id") == command_id:
                return replies[0]

    async def close(self) -> None:
        self.response.close()
        await self._client.close()


async def open_raw_stream(port: int, user: str, *, source: str | None = None) -> tuple[RawSocket, str]:
    """Open an HTTP-streaming session by hand on a socket with a small receive buffer, read its
    connect reply and nothing more; return the socket and the session id. ``source`` is
    :func:`open_raw_client`'s."""
    raw = await open_raw_client(port, rcvbuf=4096, source=source)
    connect = json.dumps({"id": 1, "connect": {"token": make_token(user)}}).encode()
    head = f"POST /connection/http_stream HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(connect)}\r\n\r\n"
    try:
        await raw.send(head.encode() + connect)
        assert (await raw.read_head()).startswith(b"HTTP/1.1 200 ")
        while (end := raw.buffer.find(b"\r\n")) < 0:
            await raw._fill()
        size = int(await raw.read_exact(end + 2), 16)
        reply = json.loads(await raw.read_exact(size))
    except BaseException:
        raw.close()
        raise
    assert "connect" in reply, reply
    return raw, reply["connect"]["session"]
