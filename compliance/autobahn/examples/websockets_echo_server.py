#!/usr/bin/env python3
"""Echo server for the Autobahn fuzzingclient, using the `websockets` library
(asyncio implementation, permessage-deflate enabled by default).

Usage: python websockets_echo_server.py [--host 127.0.0.1] [--port 9001]
"""

from __future__ import annotations

import argparse
import asyncio

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(host, port, max_size):
    # max_size: the 9.* cases send messages of up to 16 MiB.
    async with serve(echo, host, port, max_size=max_size, max_queue=1, server_header="websockets-echo") as server:
        print(f"websockets echo server on ws://{host}:{port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9001)
    p.add_argument("--max-size", type=int, default=2**25)
    a = p.parse_args()
    try:
        asyncio.run(main(a.host, a.port, a.max_size))
    except KeyboardInterrupt:
        pass
