"""Bench peer: aiohttp web WebSocket. /echo echoes (send_str/send_bytes), /bcast forwards to all OTHER /bcast conns
(sequential awaits, the usual aiohttp idiom). compress=False, max_msg_size 16 MiB, heartbeat OFF, access log OFF.
Usage: aiohttp_server.py [--port P] [--uvloop]"""

from __future__ import annotations

import argparse
import os

from aiohttp import WSMsgType, web

MAX = 16 * 1024 * 1024
BCAST = set()


async def echo(request):
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX, autoping=True, heartbeat=None)
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            await ws.send_str(msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data)
    return ws


async def bcast(request):
    ws = web.WebSocketResponse(compress=False, max_msg_size=MAX, autoping=True, heartbeat=None)
    await ws.prepare(request)
    BCAST.add(ws)
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            text = msg.type == WSMsgType.TEXT
            for o in list(BCAST):
                if o is ws or o.closed:
                    continue
                try:
                    if text:
                        await o.send_str(msg.data)
                    else:
                        await o.send_bytes(msg.data)
                except (ConnectionError, RuntimeError):
                    pass
    finally:
        BCAST.discard(ws)
    return ws


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9001)))
    ap.add_argument("--uvloop", action="store_true")
    a = ap.parse_args()
    if a.uvloop:
        import uvloop

        uvloop.install()
    app = web.Application()
    app.router.add_get("/echo", echo)
    app.router.add_get("/bcast", bcast)
    print(f"aiohttp listening on 127.0.0.1:{a.port}", flush=True)
    web.run_app(app, host="127.0.0.1", port=a.port, access_log=None, print=None, backlog=4096)
