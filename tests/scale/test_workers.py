"""``wavecast serve --workers N``: N processes on one port (SO_REUSEPORT) sharing the Redis
engine, delivering across each other; and a refusal to start them on the memory engine."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

from centrifuge import Client

from ..support.cluster import StartNodes, cluster_config
from ..support.config import BASE_CONFIG, write_config
from ..support.http import api
from ..support.processes import free_port
from ..support.redis import RedisServer
from ..support.sdk import Clients, SubEvents, subscribe
from ..support.serve import wavecast_command
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

WORKERS = 2


def worker_pids(supervisor: int) -> list[int]:
    """The processes the supervisor started (Linux: /proc's children list)."""
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children]


async def answering_uid(url: str) -> str:
    """The uid of whichever worker answers a fresh connection: ``info`` lists it first."""
    answer = await api(url, "info")
    return str(answer["result"]["nodes"][0]["uid"])


async def clients_by_worker(url: str) -> dict[str, int]:
    """How many clients each worker holds, from the cluster-wide ``info``."""
    answer = await api(url, "info")
    return {node["uid"]: node["num_clients"] for node in answer["result"]["nodes"]}


async def wait_for_workers(url: str, count: int) -> set[str]:
    """Ask until ``count`` distinct workers answered: the kernel spreads connections among them."""
    uids: set[str] = set()
    async with asyncio.timeout(15_000 * MS):
        while len(uids) < count:
            uids.add(await answering_uid(url))
    return uids


async def test_workers_share_one_port_and_deliver_across_each_other(
    own_redis: RedisServer, start_nodes: StartNodes, make_client: Clients
) -> None:
    (supervisor,) = await start_nodes(cluster_config(own_redis, server={"workers": WORKERS}))
    assert len(worker_pids(supervisor.pid)) == WORKERS
    uids = await wait_for_workers(supervisor.url, WORKERS)

    # Clients connect to the one port until every worker holds some.
    clients: list[tuple[Client, SubEvents]] = []
    async with asyncio.timeout(30_000 * MS):
        while len(clients) < 4 or not all((held := await clients_by_worker(supervisor.url)).values()) or len(held) < 2:
            client, events = make_client(supervisor.ws_url, token=make_token(f"user{len(clients)}"))
            await client.connect()
            await events.wait("connected")
            clients.append((client, await subscribe(client, "news:all")))
    assert set(held) == uids
    print(f"clients per worker: {held}")

    # Publish through the API of whichever worker answers, until each worker published.
    publishers: list[str] = []
    async with asyncio.timeout(15_000 * MS):
        while set(publishers) != uids or len(publishers) < 4:
            answer = await api(
                supervisor.url,
                "batch",
                {"commands": [{"info": {}}, {"publish": {"channel": "news:all", "data": {"n": len(publishers)}}}]},
            )
            info, published = answer["replies"]
            assert "publish" in published, published
            publishers.append(info["info"]["nodes"][0]["uid"])
    expected = [{"n": n} for n in range(len(publishers))]
    for _, events in clients:
        await wait_until(lambda events=events: events.data == expected, timeout=5000 * MS, what="every publication")

    assert await supervisor.stop(signal.SIGTERM) == 0


async def test_a_worker_that_dies_is_replaced(
    own_redis: RedisServer, start_nodes: StartNodes, make_client: Clients
) -> None:
    (supervisor,) = await start_nodes(cluster_config(own_redis, server={"workers": WORKERS}))
    before = worker_pids(supervisor.pid)
    os.kill(before[0], signal.SIGKILL)
    await wait_until(
        lambda: len(worker_pids(supervisor.pid)) == WORKERS and before[0] not in worker_pids(supervisor.pid),
        timeout=10_000 * MS,
        what="a new worker",
    )
    await wait_for_workers(supervisor.url, WORKERS)
    assert f"worker {before[0]} exited with -9; restarting it" in supervisor.log
    assert await supervisor.stop(signal.SIGTERM) == 0


def test_workers_on_the_memory_engine_refuse_to_start(tmp_path: Path) -> None:
    config: dict[str, Any] = {**BASE_CONFIG, "engine": {"type": "memory"}}
    path = write_config(tmp_path, config)
    port = free_port()
    result = subprocess.run(
        [*wavecast_command(), "serve", "--config", str(path), "--port", str(port), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"wavecast: invalid configuration in {path}:",
        "  server.workers: several workers need a shared engine: with engine.type = 'memory' each process would "
        "have its own channels, history and presence; set engine.type = 'redis'",
    ]


async def test_each_worker_imports_the_application(
    tmp_path: Path, own_redis: RedisServer, start_nodes: StartNodes, make_client: Clients
) -> None:
    # In the nodes' directory, where `--app` finds it as uvicorn does.
    (tmp_path / "pids.py").write_text(
        "import os\n\ndef setup(node):\n    @node.rpc('pid')\n    async def pid(ctx):\n        return os.getpid()\n"
    )
    (supervisor,) = await start_nodes(cluster_config(own_redis, server={"workers": WORKERS, "app": "pids:setup"}))
    workers = set(worker_pids(supervisor.pid))
    answered: set[int] = set()
    # Fresh connections until the kernel handed one to each worker: each answers the RPC.
    async with asyncio.timeout(30_000 * MS):
        while answered != workers:
            client, _ = await make_client.connected(supervisor.ws_url, f"user{len(answered)}")
            answered.add((await client.rpc("pid", None)).data)
            await client.disconnect()
            assert answered <= workers
    assert supervisor.log.count("loaded the application's hooks from pids:setup") == WORKERS
    assert await supervisor.stop(signal.SIGTERM) == 0
