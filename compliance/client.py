"""The client that Autobahn's fuzzingserver tests.

``python compliance/client.py [URL] [AGENT]``: reads the case count, echoes every message of
every case, then asks the server to write its reports. URL and AGENT default to
``$AUTOBAHN_URL`` (ws://127.0.0.1:9002) and ``$AUTOBAHN_AGENT`` (wavecast).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

import wavecast
from wavecast.exceptions import WavecastError

# Autobahn's 9.* cases send messages up to 16 MiB, in up to 65,536 fragments.
LIMITS = wavecast.Limits(max_message_size=2**25, max_frame_size=2**25, max_fragments=None)
CASE_TIMEOUT = float(os.environ.get("AUTOBAHN_CASE_TIMEOUT", "600"))


async def case_count(base: str) -> int:
    async with wavecast.connect(f"{base}/getCaseCount") as connection:
        return int(json.loads(await connection.recv()))


async def run_case(base: str, case: int, agent: str) -> None:
    try:
        async with wavecast.connect(
            f"{base}/runCase?case={case}&agent={agent}", limits=LIMITS, max_queue=1, ping_interval=None
        ) as connection:
            async for message in connection:
                await connection.send(message)
    except (WavecastError, OSError):
        pass  # many cases end with a protocol error on purpose


async def update_reports(base: str, agent: str) -> None:
    async with wavecast.connect(f"{base}/updateReports?agent={agent}", open_timeout=60) as connection:
        try:
            await asyncio.wait_for(connection.wait_closed(), 300)
        except TimeoutError:
            pass


async def main(base: str, agent: str) -> None:
    count = await case_count(base)
    print(f"{count} cases", flush=True)
    for case in range(1, count + 1):
        try:
            await asyncio.wait_for(run_case(base, case, agent), CASE_TIMEOUT)
        except TimeoutError:
            print(f"case {case}: timed out", flush=True)
    await update_reports(base, agent)
    print("reports updated", flush=True)


if __name__ == "__main__":
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("AUTOBAHN_URL", "ws://127.0.0.1:9002")
    name = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("AUTOBAHN_AGENT", "wavecast")
    wavecast.run(main(url.rstrip("/"), name))
