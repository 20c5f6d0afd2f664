"""A connect-proxy backend for bench/proxy.py: aiohttp, answering Centrifugo's connect proxy
with the user named in the client's data, and ``GET /stats`` with the number of TCP
connections it accepted (keep-alive reuses them) and of requests it answered.

    python bench/servers/proxy_backend.py PORT
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

peers: set[object] = set()
requests = 0


async def connect(request: web.Request) -> web.Response:
    global requests
    requests += 1
    peers.add(request.transport.get_extra_info("peername") if request.transport else None)
    body = json.loads(await request.read())
    user = (body.get("data") or {}).get("user", "anonymous")
    return web.json_response({"result": {"user": user, "info": {"name": user}}})


async def stats(request: web.Request) -> web.Response:
    return web.json_response({"connections": len(peers), "requests": requests})


async def ready(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def setup(node: object) -> None:
    """The in-process hook that bench/proxy.py compares with the proxy: the same answer."""
    from wavecast.realtime import ConnectingContext, ConnectResult, Node

    assert isinstance(node, Node)

    @node.connecting
    async def on_connecting(ctx: ConnectingContext) -> ConnectResult:
        user = json.loads(ctx.data or b"{}").get("user", "anonymous")
        return ConnectResult(user=user, info=json.dumps({"name": user}).encode())


if __name__ == "__main__":
    app = web.Application()
    app.router.add_post("/centrifugo/connect", connect)
    app.router.add_get("/stats", stats)
    app.router.add_get("/ready", ready)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
