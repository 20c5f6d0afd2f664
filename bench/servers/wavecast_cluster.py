"""Two wavecast nodes sharing a channel through a private redis-server, for cross-node fan-out.

``python bench/servers/wavecast_cluster.py --port P`` starts redis-server (a free port, a
temporary directory, no persistence), node B (``wavecast_channels.py --redis`` on port P+1,
a child process) and serves node A on port P in this process. The loadgen publishes on A
(``--pub-path /publish``) and sends every other subscriber to B (``--alt-port-offset 1``), so
half the deliveries cross Redis: A publishes into the channel's Redis pub/sub, and B fans it
out to its own subscribers. ``--nodes 1`` runs node A alone on the Redis engine, to tell the
engine's cost from the second node's. ``--engine nats`` also starts nats-server (a free port)
and puts both nodes on the NATS engine: publications cross NATS, history and presence stay in
Redis. ``--channels N`` makes both nodes publish each message to N channels (see
``wavecast_channels.py``). On SIGTERM node A stops, then B, nats-server and redis-server, by
their PIDs.
Every process inherits this one's CPU affinity: under the bench runner all three share CPU 0.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import wavecast

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import wavecast_channels  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"{what} isn't listening on {port}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cluster_port() -> int:
    """A free port whose cluster bus port (10000 above) is free too."""
    while True:
        port = free_port()
        if port + 10000 <= 65535:
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def more_redis(engine: str, directory: str, children: list[subprocess.Popen[bytes]]) -> str:
    """Start 3 redis-servers as shards, or 6 as a Redis Cluster of 3 masters and 3 replicas;
    return their URLs, comma-separated (the cluster's first node only)."""
    cluster = engine == "redis-cluster"
    ports = [cluster_port() for _ in range(6 if cluster else 3)]
    for port in ports:
        os.makedirs(os.path.join(directory, str(port)))
        options = ["--cluster-enabled", "yes", "--cluster-require-full-coverage", "no"] if cluster else []
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *options],
            cwd=os.path.join(directory, str(port)),
            stdout=subprocess.DEVNULL,
        )
        children.append(server)
        wait_for_port(port, server, "redis-server")
    if not cluster:
        return ",".join(f"redis://127.0.0.1:{port}/0" for port in ports)
    subprocess.run(
        [
            "redis-cli",
            "--cluster",
            "create",
            *(f"127.0.0.1:{p}" for p in ports),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
        ],
        capture_output=True,
        check=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while (
        b"cluster_state:ok"
        not in subprocess.run(
            ["redis-cli", "-p", str(ports[0]), "cluster", "info"], capture_output=True, check=True
        ).stdout
    ):
        if time.monotonic() > deadline:
            raise SystemExit("wavecast_cluster.py: the Redis Cluster didn't become ok")
        time.sleep(0.1)
    return f"redis://127.0.0.1:{ports[0]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "9003")))
    parser.add_argument("--nodes", type=int, choices=(1, 2), default=2, help="1: node A alone, on Redis")
    parser.add_argument("--write-delay", type=float, default=None, metavar="S", help="the nodes' write delay")
    parser.add_argument(
        "--engine",
        choices=("redis", "redis-shards", "redis-cluster", "nats"),
        default="redis",
        help="the broker between the nodes: one Redis, 3 Redis shards, a 3-master Redis Cluster, NATS",
    )
    parser.add_argument("--channels", type=int, default=0, metavar="N", help="publish to N channels")
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit("wavecast_cluster.py: redis-server isn't installed")
    directory = tempfile.mkdtemp(prefix="wavecast-bench-redis-")
    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
    )
    children = [redis]

    def cleanup() -> None:
        for child in reversed(children):
            stop(child)
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(cleanup)
    wait_for_port(redis_port, redis, "redis-server")
    url = f"redis://127.0.0.1:{redis_port}/0"
    redis_mode = "one"
    if args.engine in ("redis-shards", "redis-cluster"):
        url, redis_mode = more_redis(args.engine, directory, children), args.engine.removeprefix("redis-")
    nats_url = None
    if args.engine == "nats":
        nats_port = free_port()
        program = shutil.which("nats-server") or "/usr/sbin/nats-server"
        nats = subprocess.Popen(
            [program, "--addr", "127.0.0.1", "--port", str(nats_port)], cwd=directory, stderr=subprocess.DEVNULL
        )
        children.append(nats)
        wait_for_port(nats_port, nats, "nats-server")
        nats_url = f"nats://127.0.0.1:{nats_port}"
    if args.nodes == 2:
        node_b = subprocess.Popen(
            [sys.executable, str(HERE / "wavecast_channels.py"), "--port", str(args.port + 1), "--redis", url]
            + ["--redis-mode", redis_mode]
            + (["--nats", nats_url] if nats_url else [])
            + (["--channels", str(args.channels)] if args.channels else [])
            + (["--write-delay", str(args.write_delay)] if args.write_delay else [])
        )
        children.append(node_b)
        wait_for_port(args.port + 1, node_b, "node B")
    wavecast.run(
        wavecast_channels.main(
            args.port,
            history=False,
            redis_url=url,
            write_delay=args.write_delay,
            nats_url=nats_url,
            channel_count=args.channels,
            redis_mode=redis_mode,
        )
    )


if __name__ == "__main__":
    main()
