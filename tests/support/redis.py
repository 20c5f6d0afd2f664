"""A private redis-server for tests: a free port, a temporary directory, stopped by its PID."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import redis

from .processes import free_port, terminate, wait_answering
from .tools import redis_cli, redis_server

__all__ = ["RedisCluster", "RedisServer", "private_redis", "private_redis_cluster", "private_redis_shards", "restart"]


class RedisServer:
    """A redis-server process; ``start()`` and ``stop()`` may be called again (a restart).

    Args:
        persistent: keep data across restarts with an append-only file fsynced on every write,
            so that what Redis acknowledged survives a restart.
    """

    def __init__(
        self, program: str, directory: Path, *, persistent: bool = False, port: int = 0, options: Sequence[str] = ()
    ) -> None:
        self.program = program
        self.directory = directory
        self.persistent = persistent
        self.port = port or free_port()
        #: More command-line options of redis-server.
        self.options = list(options)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        self.process = subprocess.Popen(
            [
                self.program,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                *persistence,
                "--dir",
                str(self.directory),
                "--protected-mode",
                "no",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_answering(self.process, self.port, b"+PONG", b"PING\r\n")

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process, timeout=10)
        self.process = None


@contextmanager
def private_redis(*, persistent: bool = False) -> Iterator[RedisServer]:
    """Run a private redis-server; skip when it isn't installed, except under ``CI=true``."""
    program = redis_server()
    with tempfile.TemporaryDirectory(prefix="wavecast-redis-") as directory:
        server = RedisServer(program, Path(directory), persistent=persistent)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextmanager
def private_redis_shards(count: int = 3) -> Iterator[list[RedisServer]]:
    """Run ``count`` private redis-servers, the shards of one sharded engine."""
    program = redis_server()
    with tempfile.TemporaryDirectory(prefix="wavecast-redis-shards-") as directory:
        servers: list[RedisServer] = []
        try:
            for index in range(count):
                (Path(directory) / str(index)).mkdir()
                servers.append(RedisServer(program, Path(directory) / str(index)))
                servers[-1].start()
            yield servers
        finally:
            for server in servers:
                server.stop()


def _cluster_port() -> int:
    """A free port whose cluster bus port (10000 above) is free too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisCluster:
    """A Redis Cluster of masters with a replica each, on loopback.

    Attributes:
        servers: every node; ``redis-cli --cluster create`` made the first ``masters`` masters.
    """

    def __init__(self, servers: list[RedisServer], masters: int) -> None:
        self.servers = servers
        self.masters = masters

    @property
    def urls(self) -> list[str]:
        return [server.url for server in self.servers]

    def _ask(self, server: RedisServer, *command: str) -> Any:
        client = redis.Redis(port=server.port, socket_timeout=2)
        try:
            return client.execute_command(*command)
        finally:
            client.close()

    def _slot_map(self, server: RedisServer) -> list[tuple[int, int, int]]:
        """(first slot, last slot, master port) of each range, as ``server`` sees them."""
        return sorted((int(r[0]), int(r[1]), int(r[2][1])) for r in self._ask(server, "CLUSTER", "SLOTS"))

    def live(self) -> list[RedisServer]:
        return [server for server in self.servers if server.process is not None]

    def owner(self, slot: int) -> RedisServer:
        """The node that serves ``slot`` now, as the first live node sees it."""
        ports = {server.port: server for server in self.servers}
        for low, high, port in self._slot_map(self.live()[0]):
            if low <= slot <= high:
                return ports[port]
        raise RuntimeError(f"no node serves slot {slot}")

    def _replicas_synced(self, live: list[RedisServer]) -> bool:
        # A replica that never synced with its master is refused the failover (its data is
        # too old to take over): wait until each has.
        roles = [self._ask(server, "INFO", "replication") for server in live]
        return all(role["role"] == "master" or role["master_link_status"] == "up" for role in roles)

    def move_slot(self, slot: int, source: RedisServer, target: RedisServer) -> None:
        """Migrate ``slot`` and its keys from master ``source`` to master ``target``, as
        ``redis-cli --cluster reshard`` does one slot."""
        source_id, target_id = self._ask(source, "CLUSTER", "MYID"), self._ask(target, "CLUSTER", "MYID")
        self._ask(target, "CLUSTER", "SETSLOT", str(slot), "IMPORTING", source_id)
        self._ask(source, "CLUSTER", "SETSLOT", str(slot), "MIGRATING", target_id)
        while keys := self._ask(source, "CLUSTER", "GETKEYSINSLOT", str(slot), "100"):
            self._ask(source, "MIGRATE", "127.0.0.1", str(target.port), "", "0", "5000", "KEYS", *keys)
        for server in (target, source):
            self._ask(server, "CLUSTER", "SETSLOT", str(slot), "NODE", target_id)
        self.wait_ok()

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every live node says the cluster is ok, they agree on who serves what, and
        every live replica is in sync with its master."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, OSError):
                live = self.live()
                ok = all(b"cluster_state:ok" in self._ask(s, "CLUSTER", "INFO") for s in live)
                maps = {tuple(self._slot_map(s)) for s in live}
                covered = sum(high - low + 1 for low, high, _ in next(iter(maps)))
                if ok and len(maps) == 1 and covered == 16384 and self._replicas_synced(live):
                    return
            time.sleep(0.1)
        raise RuntimeError("the Redis Cluster didn't become ok")


@contextmanager
def private_redis_cluster(masters: int = 3) -> Iterator[RedisCluster]:
    """Run a Redis Cluster of ``masters`` masters and one replica each, failing over after
    1 s without its master; skip when redis-server isn't installed, except under ``CI=true``."""
    program = redis_server()
    # Without full coverage required, the masters left serve their slots while one fails over.
    options = ["--cluster-enabled", "yes", "--cluster-node-timeout", "1000", "--cluster-config-file", "nodes.conf"]
    options += ["--cluster-require-full-coverage", "no"]
    with tempfile.TemporaryDirectory(prefix="wavecast-redis-cluster-") as directory:
        servers: list[RedisServer] = []
        try:
            for index in range(masters * 2):
                (Path(directory) / str(index)).mkdir()
                server = RedisServer(program, Path(directory) / str(index), port=_cluster_port(), options=options)
                servers.append(server)
                server.start()
            subprocess.run(
                [
                    redis_cli(),
                    "--cluster",
                    "create",
                    *(f"127.0.0.1:{s.port}" for s in servers),
                    "--cluster-replicas",
                    "1",
                    "--cluster-yes",
                ],
                capture_output=True,
                timeout=60,
                check=True,
            )
            cluster = RedisCluster(servers, masters)
            cluster.wait_ok()
            yield cluster
        finally:
            for server in servers:
                server.stop()


async def restart(server: RedisServer, down: float = 0.0) -> None:
    """Stop redis-server, leave it down ``down`` seconds, start it again on the same port."""
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(down)
    await asyncio.to_thread(server.start)
