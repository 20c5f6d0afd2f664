"""Channel fan-out through wavecast's real-time layer, for the loadgen's fan-out mode.

Subscribers are real-time clients at ``/connection/websocket``: each sends the protocol's
connect and subscribe commands (the loadgen's ``--sub-init``) and then receives every
publication of the channel ``bench`` as a push, ``{"push":{"channel":"bench","pub":{"data":
"<payload>"}}}``, which the loadgen unwraps (``--unwrap``). The publisher is a plain
WebSocket connection at ``/publish``: each of its text messages is published to the channel
with :meth:`Node.publish`, as a backend publishing from Python would. Anonymous clients may
connect and subscribe; no presence, no compression, no pings unless ``--pings``. ``--redis URL`` puts the node
on the Redis engine, to share the channel with other nodes (``wavecast_cluster.py``); with
``--nats URL`` as well, on the NATS engine (publications over NATS, the rest in Redis); with
``--redis-mode shards`` or ``cluster``, ``--redis`` lists shards, or nodes of a Redis Cluster.
``--channels N`` publishes each message to the N channels ``bench0`` ... ``bench<N-1>``
instead of ``bench``, for subscribers spread over them. With ``--history`` the channel
keeps its last 1,000 publications for 5 minutes and every subscriber is positioned (recovery),
so that each delivery also advances the subscriber's offset in the stream. With ``--tags`` the
channel allows tags filters (``allow_tags_filter``) and every publication carries the tag
``k=x``, for subscribers that send a tags filter (``tf``) in their subscribe command.
``--gc-threshold N`` sets the cyclic collector's first threshold (Python's default is 700; 0
turns it off), as ``wavecast_server.py``'s does.

Usage: ``python bench/servers/wavecast_channels.py --port P [--history] [--tags] [--redis URL [--nats URL]]
[--channels N] [--gc-threshold N] [--uvloop | --no-uvloop]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import wavecast
from wavecast.realtime import ChannelOptions, Node, NodeConfig
from wavecast.realtime.websocket import WEBSOCKET_PATH, handle_websocket

# The sibling module, also when a test loads this script by its path.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from channel_feed import publish_feed

CHANNEL = "bench"

#: What the loadgen's subscribers send once open, and the wrapper of what they receive.
SUB_INIT = '{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"' + CHANNEL + '"}}'
UNWRAP_PREFIX = '{"push":{"channel":"' + CHANNEL + '","pub":{"data":"'


#: The tags of every publication with ``--tags``.
TAGS = {"k": "x"}


def make_node(
    history: bool,
    redis_url: str | None = None,
    tags: bool = False,
    nats_url: str | None = None,
    redis_mode: str = "one",
    pings: bool = False,
) -> Node:
    recovery: dict[str, Any] = dict(history_size=1000, history_ttl=300.0, force_recovery=True) if history else {}
    if tags:
        recovery["allow_tags_filter"] = True
    engines: dict[str, Any] = {}
    if nats_url is not None and redis_url is not None:
        from wavecast.engines.nats import NatsEngine

        nats = NatsEngine(nats_url, redis_url)
        engines = {"broker": nats.broker, "presence_manager": nats.presence_manager}
    elif redis_url is not None and redis_mode == "shards":
        from wavecast.engines.redis.sharded import ShardedRedisEngine

        sharded = ShardedRedisEngine(redis_url.split(","))
        engines = {"broker": sharded.broker, "presence_manager": sharded.presence_manager}
    elif redis_url is not None and redis_mode == "cluster":
        from wavecast.engines.redis.cluster import RedisClusterEngine

        on_cluster = RedisClusterEngine(redis_url.split(","))
        engines = {"broker": on_cluster.broker, "presence_manager": on_cluster.presence_manager}
    elif redis_url is not None:
        from wavecast.engines.redis import RedisEngine

        engine = RedisEngine(redis_url)
        engines = {"broker": engine.broker, "presence_manager": engine.presence_manager}
    return Node(
        NodeConfig(
            allow_anonymous_connect_without_token=True,
            channel=ChannelOptions(allow_subscribe_for_anonymous=True, allow_subscribe_for_client=True, **recovery),
            # The protocol's pings, every 25 s as by default, only with --pings.
            client_ping_interval=25.0 if pings else 0,
            # A publisher keeps up to 16 messages in flight to 10,000 subscribers at 100 bytes a push.
            client_queue_max_size=16 * 2**20,
            user_connection_limit=20_000,
            # The benches connect 10,000 clients as fast as they can; storms are bench/storm.py's.
            admission_connection_rate=None,
            admission_connect_rate=None,
        ),
        **engines,
    )


#: The node this process serves; ``main`` makes it from the command line.
node = make_node(history=False)
#: The tags each publication carries (``--tags``).
tags: dict[str, str] | None = None
#: The channels each message is published to (``--channels``).
channels = [CHANNEL]


def handler(connection: wavecast.ServerConnection) -> Awaitable[None] | None:
    """Clients start their sessions here, with no task; the publisher and the rest get one."""
    assert connection.request is not None
    path = connection.request.path
    if path == WEBSOCKET_PATH:
        # None; but a coroutine from the src/ of a commit before handle_websocket was a plain
        # function (bench/realtime.py --ref), which that commit's server awaits in a task.
        return handle_websocket(node, connection)  # type: ignore[func-returns-value]
    if path == "/publish":
        return publish_feed(node, connection, channels, tags)
    connection.close_nowait(wavecast.CloseCode.POLICY_VIOLATION, "unknown path")
    return None


async def main(
    port: int,
    history: bool,
    redis_url: str | None = None,
    write_delay: float | None = None,
    tagged: bool = False,
    *,
    nats_url: str | None = None,
    channel_count: int = 0,
    redis_mode: str = "one",
    pings: bool = False,
) -> None:
    global node, tags, channels
    node = make_node(history, redis_url, tagged, nats_url, redis_mode, pings)
    tags = TAGS if tagged else None
    channels = [f"{CHANNEL}{n}" for n in range(channel_count)] if channel_count else [CHANNEL]
    async with (
        node,
        wavecast.serve(
            handler,
            "127.0.0.1",
            port,
            origins=["*"],
            ping_interval=None,
            ping_timeout=None,
            max_queue=64,
            backlog=4096,
            compression=None,
            write_limit=2**20,
            write_delay=write_delay,
        ) as server,
    ):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, server.close)
        print(f"wavecast channels listening on 127.0.0.1:{server.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "9002")))
    parser.add_argument("--history", action="store_true", help="keep history; subscribers are positioned")
    parser.add_argument("--tags", action="store_true", help="tag publications; subscribers may filter them")
    parser.add_argument("--redis", metavar="URL", help="share channels with other nodes through this Redis")
    parser.add_argument("--nats", metavar="URL", help="with --redis: publish through this NATS server")
    parser.add_argument(
        "--redis-mode",
        choices=("one", "shards", "cluster"),
        default="one",
        help="--redis is one server, or comma-separated shards, or nodes of a Redis Cluster",
    )
    parser.add_argument("--channels", type=int, default=0, metavar="N", help="publish to bench0 ... bench<N-1>")
    parser.add_argument("--write-delay", type=float, default=None, metavar="S", help="gather writes for S seconds")
    parser.add_argument("--pings", action="store_true", help="ping clients every 25 s (Centrifugo's default)")
    parser.add_argument(
        "--uvloop",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force uvloop on or off (default: use it when installed)",
    )
    parser.add_argument("--gc-threshold", type=int, help="the cyclic GC's gen0 threshold (0: off)")
    args = parser.parse_args()
    if args.gc_threshold is not None:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    wavecast.run(
        main(
            args.port,
            args.history,
            args.redis,
            args.write_delay,
            args.tags,
            nats_url=args.nats,
            channel_count=args.channels,
            redis_mode=args.redis_mode,
            pings=args.pings,
        ),
        use_uvloop=args.uvloop,
    )
