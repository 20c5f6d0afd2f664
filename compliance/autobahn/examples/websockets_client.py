#!/usr/bin/env python3
"""Autobahn fuzzingserver client driver for the `websockets` library
(asyncio implementation, permessage-deflate enabled by default).

The standard Autobahn client loop:
  1. ws://HOST:PORT/getCaseCount                 -> one text message: N
  2. for case in 1..N:
       ws://HOST:PORT/runCase?case=i&agent=NAME  -> echo every message back
                                                    until the server closes
  3. ws://HOST:PORT/updateReports?agent=NAME     -> writes the reports

Usage: websockets_client.py [URL] [AGENT]
  URL defaults to $AUTOBAHN_URL or ws://127.0.0.1:9002,
  AGENT to $AUTOBAHN_AGENT or "websockets".
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import WebSocketException

CASE_TIMEOUT = float(os.environ.get("AUTOBAHN_CASE_TIMEOUT", "600"))


async def get_case_count(base):
    async with connect(f"{base}/getCaseCount") as ws:
        return json.loads(await ws.recv())


async def run_case(base, case, agent):
    uri = f"{base}/runCase?case={case}&agent={agent}"
    try:
        # max_size: the 9.* cases send messages of up to 16 MiB
        async with connect(uri, max_size=2**25, max_queue=1) as ws:
            async for msg in ws:
                await ws.send(msg)
    except WebSocketException:
        pass  # protocol errors are expected in many cases


async def update_reports(base, agent):
    async with connect(f"{base}/updateReports?agent={agent}", open_timeout=60) as ws:
        try:
            await asyncio.wait_for(ws.wait_closed(), 300)
        except TimeoutError:
            pass


async def main(base, agent):
    count = await get_case_count(base)
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        try:
            await asyncio.wait_for(run_case(base, case, agent), CASE_TIMEOUT)
        except (TimeoutError, OSError) as e:
            print(f"case {case}: {e!r}", flush=True)
    await update_reports(base, agent)
    print("reports updated", flush=True)


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9002")
    agent = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("AUTOBAHN_AGENT", "websockets")
    asyncio.run(main(url.rstrip("/"), agent))
