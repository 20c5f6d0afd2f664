"""An application backend for Centrifugo's event proxies, written from the examples of
Centrifugo's proxy documentation (centrifugal.dev/docs/server/proxy), as an aiohttp server
on a free port. It answers each proxy at ``/centrifugo/<kind>`` as those examples do, records
every request, and can be told to misbehave per proxy: answer slowly, with garbage, with
another HTTP status, or with Centrifugo's ``error`` and ``disconnect`` answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

from aiohttp import web

from .http import serve_aiohttp

__all__ = ["SLOW", "ProxyBackend", "ProxyCall"]

#: An answer that comes after the proxy's timeout.
SLOW = "slow"

KINDS = ("connect", "refresh", "subscribe", "publish", "sub_refresh", "rpc")


@dataclasses.dataclass(frozen=True)
class ProxyCall:
    """One request the backend received: its JSON body and its headers."""

    kind: str
    body: dict[str, Any]
    headers: dict[str, str]


def _result(kind: str, body: dict[str, Any], ttl: int) -> dict[str, Any]:
    """What Centrifugo's documentation examples answer."""
    data = body.get("data")
    if kind == "connect":
        user = data.get("user", "56") if isinstance(data, dict) else "56"
        result: dict[str, Any] = {"user": user, "info": {"name": f"user {user}"}, "data": {"welcome": user}}
        if ttl:
            result["expire_at"] = int(time.time()) + ttl
        return {"result": result}
    if kind in ("refresh", "sub_refresh"):
        return {"result": {"expire_at": int(time.time()) + ttl, "info": {"refreshed": True}}}
    if kind == "subscribe":
        result = {"info": {"channel": body["channel"]}, "data": {"subscribed": body["channel"]}}
        if ttl:
            result["expire_at"] = int(time.time()) + ttl
        return {"result": result}
    if kind == "publish":
        # The backend may rewrite what is published; here it marks it as checked.
        return {"result": {"data": {**(data or {}), "checked": True}}}
    # rpc: the getCurrentYear example, and an echo of the data.
    return {"result": {"data": {"method": body["method"], "echo": data, "year": time.gmtime().tm_year}}}


class ProxyBackend:
    """The backend; ``answers[kind]`` replaces a proxy's answer: a dict (sent as JSON), bytes
    (sent as they are), an int (an empty answer with that HTTP status) or :data:`SLOW`."""

    def __init__(self) -> None:
        self.calls: list[ProxyCall] = []
        self.answers: dict[str, Any] = {}
        #: Seconds until what connect, subscribe, refresh and sub_refresh grant expires; 0 never.
        self.ttl = 0
        #: Seconds a :data:`SLOW` answer takes.
        self.slow_delay = 3.0
        self.port = 0
        self._runner: web.AppRunner | None = None

    @classmethod
    async def start(cls) -> ProxyBackend:
        backend = cls()
        app = web.Application()
        for kind in KINDS:
            app.router.add_post(f"/centrifugo/{kind}", backend._handler(kind))
        backend._runner, backend.port = await serve_aiohttp(app)
        return backend

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.port}/centrifugo/{kind}"

    def called(self, kind: str) -> list[ProxyCall]:
        return [call for call in self.calls if call.kind == kind]

    def _handler(self, kind: str) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            body = json.loads(await request.read())
            self.calls.append(ProxyCall(kind, body, dict(request.headers)))
            answer = self.answers.get(kind)
            if answer == SLOW:
                await asyncio.sleep(self.slow_delay)
                answer = None
            if isinstance(answer, int):
                return web.Response(status=answer)
            if isinstance(answer, bytes):
                return web.Response(body=answer, content_type="application/json")
            return web.json_response(answer if answer is not None else _result(kind, body, self.ttl))

        return handle
