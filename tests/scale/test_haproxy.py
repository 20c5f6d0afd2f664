"""The deployment of ``examples/deploy/``: haproxy, configured as the example is, in front of two
``wavecast serve`` nodes sharing one Redis. Clients go through haproxy; a node drained with
SIGTERM answers 503 on ``/ready`` and sends its clients (3001) through haproxy to the other."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from centrifuge import Client

from wavecast.codes import DISCONNECT_SHUTDOWN
from wavecast.realtime.contexts import ConnectingContext

from ..support.cluster import ChaosReport, StartNodes, cluster, cluster_config, num_clients
from ..support.haproxy import HAPROXY_EXAMPLE, StartHaproxy, haproxy_config
from ..support.http import api
from ..support.redis import RedisServer
from ..support.sdk import ClientEvents, Clients, SubEvents, subscribe
from ..support.servers import StartWavecast
from ..support.timing import MS, wait_until
from ..support.tokens import make_token
from ..support.tools import haproxy


def test_the_example_configuration_is_valid(tmp_path: Path) -> None:
    program = haproxy()
    for path in (HAPROXY_EXAMPLE, tmp_path / "rendered.cfg"):
        if path != HAPROXY_EXAMPLE:
            path.write_text(haproxy_config(18000, [18001, 18002]))
        result = subprocess.run([program, "-c", "-f", str(path)], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, result.stdout + result.stderr


class KeptAlive:
    """One HTTP/1.1 connection kept open across requests, as a load balancer's may be."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> KeptAlive:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def get(self, path: str) -> int:
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        line = await self.reader.readline()
        assert line, f"the server closed the connection instead of answering GET {path}"
        status = int(line.split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.transport.abort()


async def clients_through(
    proxy_url: str, make_client: Clients, count: int, channel: str
) -> list[tuple[Client, ClientEvents, SubEvents]]:
    clients = []
    for i in range(count):
        client, events = make_client(proxy_url, token=make_token(f"user{i}"))
        await client.connect()
        await events.wait("connected")
        clients.append((client, events, await subscribe(client, channel)))
    return clients


async def test_clients_through_haproxy_reach_both_nodes(
    own_redis: RedisServer, start_nodes: StartNodes, start_haproxy: StartHaproxy, make_client: Clients
) -> None:
    nodes = await start_nodes(cluster_config(own_redis), 2)
    proxy = await start_haproxy(nodes)
    clients = await clients_through(proxy.ws_url, make_client, 6, "rec:feed")
    # leastconn spreads long-lived connections over the nodes.
    assert [await num_clients(node) for node in nodes] == [3, 3]
    for n in range(1, 4):
        # The server API through haproxy too, landing on either node.
        await api(proxy.url, "publish", {"channel": "rec:feed", "data": {"n": n}})
    for _, _, received in clients:
        await wait_until(
            lambda received=received: received.data == [{"n": 1}, {"n": 2}, {"n": 3}],
            timeout=5000 * MS,
            what="three publications",
        )


async def test_haproxy_tells_nodes_the_client_address(
    own_redis: RedisServer, start_wavecast: StartWavecast, start_haproxy: StartHaproxy, make_client: Clients
) -> None:
    running = await start_wavecast(**cluster(own_redis))
    seen: list[str | None] = []

    async def on_connecting(ctx: ConnectingContext) -> None:
        assert ctx.request is not None
        seen.append(ctx.request.headers.get("X-Forwarded-For"))

    running.node.on_connecting = on_connecting
    proxy = await start_haproxy([running])
    _, events = await make_client.connected(proxy.ws_url, "ann")
    await events.wait("connected")
    # option forwardfor: the address haproxy saw, for hooks that rate-limit or log by client.
    assert seen == ["127.0.0.1"]


async def test_draining_a_node_moves_its_clients_to_the_other(
    own_redis: RedisServer,
    start_nodes: StartNodes,
    start_haproxy: StartHaproxy,
    make_client: Clients,
    chaos_report: Callable[[str], ChaosReport],
) -> None:
    report = chaos_report("drain")
    # Unready for a second before the drain, as behind a load balancer that polls /ready.
    config = cluster_config(own_redis, server={"shutdown_delay": 1000 * MS})
    draining, staying = await start_nodes(config, 2)
    proxy = await start_haproxy([draining, staying])
    clients = await clients_through(proxy.ws_url, make_client, 6, "rec:feed")
    assert await num_clients(draining) == 3
    check = await KeptAlive.open(draining.port)
    assert await check.get("/ready") == 200

    stop = asyncio.Event()

    async def publish() -> None:
        while not stop.is_set():
            report.published += 1
            n = report.published
            answer = await api(staying.url, "publish", {"channel": "rec:feed", "data": {"n": n}})
            if "result" in answer:
                report.acknowledged.add(n)
            else:
                report.failed += 1
            await asyncio.sleep(20 * MS)

    publisher = asyncio.create_task(publish())
    await asyncio.sleep(200 * MS)
    draining.send_signal(signal.SIGTERM)
    # From the signal on, the node is unready: a check on a kept-alive connection sees 503,
    # while the node still has its clients.
    try:
        async with asyncio.timeout(2000 * MS):
            while (status := await check.get("/ready")) == 200:
                await asyncio.sleep(5 * MS)
    finally:
        check.close()
    assert status == 503
    assert await num_clients(draining) == 3
    assert await draining.wait_exit() == 0

    # Its clients were told to reconnect (3001), and did, through haproxy, to the other node.
    moved = [events for _, events, _ in clients if events.named("connecting")[1:]]
    assert len(moved) == 3
    for events in moved:
        assert any(ctx.code == DISCONNECT_SHUTDOWN.code for ctx in events.named("connecting"))
        await wait_until(
            lambda events=events: len(events.named("connected")) == 2, timeout=10_000 * MS, what="a reconnection"
        )
    assert await num_clients(staying) == 6

    await asyncio.sleep(200 * MS)
    stop.set()
    await publisher
    for index, (_, _, received) in enumerate(clients):
        await wait_until(
            lambda received=received: set(report.acknowledged) <= {d["n"] for d in received.data},
            timeout=5000 * MS,
            what="every acknowledged publication",
        )
        report.received[f"client{index}"] = [d["n"] for d in received.data]
        resubscribed = received.named("subscribed")[1:]
        assert all(ctx.recovered for ctx in resubscribed)
    report.check()
