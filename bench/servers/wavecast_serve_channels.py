"""Channel fan-out through ``wavecast serve``'s own endpoints, the same for every transport.

``python bench/servers/wavecast_serve_channels.py --port P`` runs what ``wavecast serve``
runs (:func:`wavecast.server.serve.start_server`, the same routes and endpoints) on port P,
and a publisher on port P+1 (the loadgen's ``--pub-port-offset 1``): each text message of a
WebSocket at ``/publish`` is published to the channel ``bench`` with :meth:`Node.publish`, as
``wavecast_channels.py`` does. The publisher has its own listener because ``wavecast serve``
has no route for it.

Subscribers connect with a token whose ``channels`` claim holds ``bench`` (:data:`TOKEN`):
the node subscribes them at connect (a server-side subscription), over a WebSocket at
``/connection/websocket`` or a fallback stream at ``/connection/http_stream`` or
``/connection/sse``, so that one connect command, sent the same way on every transport (the
WebSocket's first message, the stream's body or its ``cf_connect`` parameter), both connects
and subscribes. Each publication then arrives as ``{"push":{"channel":"bench","pub":{"data":
"<payload>"}}}`` on every transport, which the loadgen unwraps (``--unwrap``). No pings, no
compression; the slow-consumer queue is as large as ``wavecast_channels.py``'s.

Usage: ``python bench/servers/wavecast_serve_channels.py --port P``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import Any

import wavecast
from wavecast.realtime import Node
from wavecast.realtime.auth import sign_token
from wavecast.server.config import Config, parse_config
from wavecast.server.serve import build_node, shutdown, start_server

# The sibling module, also when a test loads this script by its path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from channel_feed import publish_feed

CHANNEL = "bench"
#: Signs :data:`TOKEN`; the server verifies it.
SECRET = "wavecast-bench-hmac-secret-of-more-than-32-bytes"
#: An anonymous client's token that subscribes it to the channel at connect; it never expires.
TOKEN = sign_token(SECRET, "", ttl=None, channels=[CHANNEL])
#: The connect command, on every transport: it connects and subscribes.
CONNECT = '{"id":1,"connect":{"token":"' + TOKEN + '"}}'
UNWRAP_PREFIX = '{"push":{"channel":"' + CHANNEL + '","pub":{"data":"'
#: The publisher's listener is at the server's port plus this.
PUBLISHER_PORT_OFFSET = 1
#: Each fallback transport's section in the configuration, enabled when the server has it.
STREAM_SECTIONS = ("http_stream", "sse")


def config(port: int) -> Config:
    """The configuration of the server under test: as :func:`make_node` in wavecast_channels.py."""
    known = {field.name for field in dataclasses.fields(Config)}
    streams: dict[str, Any] = {name: {"enabled": True} for name in STREAM_SECTIONS if name in known}
    if "per_address" in known:
        # Every client of the bench comes from 127.0.0.1: one address, as thousands behind a NAT.
        streams["per_address"] = {"max_connections": False, "handshake_rate": False}
    return parse_config(
        {
            "server": {"port": port, "allowed_origins": ["*"], "log_level": "warning", "shutdown_timeout": 2.0},
            "websocket": {"compression": False, "write_limit": 2**20},
            "http_api": {"enabled": False},
            "client": {
                "token_hmac_secret_key": SECRET,
                "client_ping_interval": 0,
                # A publisher keeps up to 16 messages in flight to 10,000 subscribers at 100 bytes a push.
                "client_queue_max_size": 16 * 2**20,
                "user_connection_limit": 20_000,
                # The benches connect 10,000 clients as fast as they can; storms are bench/storm.py's.
                "admission_connection_rate": False,
                "admission_connect_rate": False,
            },
            **streams,
        }
    )


async def publisher(node: Node, connection: wavecast.ServerConnection) -> None:
    """Publish each message, without waiting for each publication before the next."""
    assert connection.request is not None
    if connection.request.path != "/publish":
        await connection.close(wavecast.CloseCode.POLICY_VIOLATION, "unknown path")
        return
    await publish_feed(node, connection, [CHANNEL])


async def main(port: int) -> None:
    settings = config(port)
    node = build_node(settings)
    server, app = await start_server(settings, node, backlog=4096)
    feed = await wavecast.serve(
        lambda connection: publisher(node, connection),
        "127.0.0.1",
        port + PUBLISHER_PORT_OFFSET,
        ping_interval=None,
        ping_timeout=None,
        compression=None,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(f"wavecast serve channels listening on 127.0.0.1:{server.port}, publisher on {feed.port}", flush=True)
    await stop.wait()
    feed.close()
    await shutdown(server, app, settings.server.shutdown_timeout)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "9004")))
    parser.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force uvloop on or off (default: use it when installed)",
    )
    args = parser.parse_args()
    wavecast.run(main(args.port), use_uvloop=args.uvloop)
