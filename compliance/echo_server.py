"""The echo server that Autobahn's fuzzingclient tests: ``python compliance/echo_server.py --port 9001``."""

from __future__ import annotations

import argparse
import logging

import wavecast
from wavecast.asyncio.server import ServerConnection

# Autobahn's 9.* cases send messages up to 16 MiB, in up to 65,536 fragments.
LIMITS = wavecast.Limits(max_message_size=2**24, max_frame_size=2**24, max_fragments=None)


async def echo(connection: ServerConnection) -> None:
    async for message in connection:
        await connection.send(message)


async def main(host: str, port: int, compression: bool) -> None:
    extensions = []
    if compression:
        from wavecast.protocol.deflate import ServerPerMessageDeflateFactory

        extensions.append(ServerPerMessageDeflateFactory())
    async with wavecast.serve(
        echo, host, port, limits=LIMITS, max_queue=None, origins=["*"], ping_interval=None, extensions=extensions
    ) as server:
        print(f"listening on ws://{host}:{server.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001)
    parser.add_argument("--no-compression", dest="compression", action="store_false")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    wavecast.run(main(args.host, args.port, args.compression))
