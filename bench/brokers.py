"""Publications per second through the brokers alone: one Redis, NATS, three Redis shards and a
3-master Redis Cluster, in one run.

    .venv/bin/python bench/brokers.py [--channels 1000] [--rounds 20] [--reps 3]

Starts a private redis-server, nats-server, three more redis-servers as shards and six as a
Redis Cluster (free ports, a temporary directory; stopped by their PIDs), then for each broker
two engines in this process, as two nodes: B subscribes to
``--channels`` channels, A publishes one publication to each channel ``--rounds`` times (the
publications of a round concurrently, without history) and the time runs until B has received
them all. No sockets to clients and no fan-out: what the broker and its client library cost.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from wavecast.engines import Publication


class Counter:
    """A broker event handler that counts publications."""

    uid = "bench"

    def __init__(self) -> None:
        self.publications = 0

    def on_publication(self, channel: str, publication: Any, position: Any) -> None:
        self.publications += 1

    def on_join(self, channel: str, info: Any) -> None: ...
    def on_leave(self, channel: str, info: Any) -> None: ...
    def on_continuity_lost(self, channels: list[str]) -> None: ...
    def on_control(self, message: bytes) -> None: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(command: list[str], port: int, directory: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, cwd=directory, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    raise SystemExit(f"{command[0]} isn't listening on {port}")


async def measure(make: Any, channels: int, rounds: int) -> float:
    """Publications per second from engine A to engine B."""
    a, b = make(), make()
    received = Counter()
    await a.broker.start(Counter())
    await b.broker.start(received)
    try:
        names = [f"bench{n}" for n in range(channels)]
        for name in names:
            await b.broker.subscribe(name)
        publication = Publication(b'"x"')
        began = time.perf_counter()
        for _ in range(rounds):
            await asyncio.gather(*(a.broker.publish(name, publication) for name in names))
        while received.publications < channels * rounds and time.perf_counter() - began < 60:
            await asyncio.sleep(0.001)
        return received.publications / (time.perf_counter() - began)
    finally:
        await a.close()
        await b.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    from wavecast.engines.nats import NatsEngine
    from wavecast.engines.redis import RedisEngine
    from wavecast.engines.redis.cluster import RedisClusterEngine
    from wavecast.engines.redis.sharded import ShardedRedisEngine

    sys.path.insert(0, str(Path(__file__).parent / "servers"))
    from wavecast_cluster import more_redis

    nats_program = shutil.which("nats-server") or "/usr/sbin/nats-server"
    with tempfile.TemporaryDirectory(prefix="wavecast-bench-brokers-") as directory:
        redis_port, nats_port = free_port(), free_port()
        servers = [
            start(["redis-server", "--port", str(redis_port), "--save", ""], redis_port, directory),
            start([nats_program, "--addr", "127.0.0.1", "--port", str(nats_port)], nats_port, directory),
        ]
        try:
            redis_url, nats_url = f"redis://127.0.0.1:{redis_port}/0", f"nats://127.0.0.1:{nats_port}"
            shards = more_redis("redis-shards", directory, servers).split(",")
            cluster = more_redis("redis-cluster", directory, servers)
            makers = {
                "redis": lambda: RedisEngine(redis_url),
                "nats": lambda: NatsEngine(nats_url, redis_url),
                "shards": lambda: ShardedRedisEngine(shards),
                "cluster": lambda: RedisClusterEngine([cluster]),
            }
            rates: dict[str, list[float]] = {name: [] for name in makers}
            for _ in range(args.reps):
                for name, make in makers.items():  # alternating, so that noise falls on both
                    rates[name].append(await measure(make, args.channels, args.rounds))
        finally:
            for server in servers:
                server.terminate()
                server.wait()
    print(f"{args.channels} channels x {args.rounds} rounds, {args.reps} rep(s), cpu {os.cpu_count()}")
    for name, values in rates.items():
        spread = (max(values) - min(values)) / statistics.median(values)
        print(f"{name:7s} {statistics.median(values):>10,.0f} publications/s (spread {spread:.0%})")


if __name__ == "__main__":
    asyncio.run(main())
