"""Bench peer: Python `websockets` (new asyncio API). /echo echoes,
/bcast -> websockets.broadcast to all OTHER /bcast conns.
Compression OFF, max_size 16 MiB, keepalive pings OFF. Usage: websockets_server.py [--port P] [--uvloop]"""

from __future__ import annotations

import argparse
import asyncio
import os

from websockets.asyncio.server import broadcast, serve

BCAST = set()


async def handler(ws):
    path = ws.request.path.split("?", 1)[0]
    if path == "/echo":
        async for msg in ws:
            await ws.send(msg)
    elif path == "/bcast":
        BCAST.add(ws)
        try:
            async for msg in ws:
                broadcast([c for c in BCAST if c is not ws], msg)
        finally:
            BCAST.discard(ws)
    else:
        await ws.close(1008, "unknown path")


async def main(port):
    async with serve(
        handler,
        "127.0.0.1",
        port,
        compression=None,
        max_size=16 * 1024 * 1024,
        ping_interval=None,
        ping_timeout=None,
        backlog=4096,
    ) as server:
        print(f"websockets listening on 127.0.0.1:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=int(os.environ.get("PORT", 9001)))
    ap.add_argument("--uvloop", action="store_true")
    a = ap.parse_args()
    if a.uvloop:
        import uvloop

        uvloop.run(main(a.port))
    else:
        asyncio.run(main(a.port))
