"""``examples/deploy/nats.toml``: two nodes on the NATS engine, as the example runs them, with its
servers swapped for private ones; publications cross nats-server, history stays in Redis."""

from __future__ import annotations

import tomllib
from pathlib import Path

import redis.asyncio as aioredis

from ..support.cluster import NatsDeployment, StartNodes, cluster_config
from ..support.http import api
from ..support.nats import private_nats
from ..support.redis import private_redis
from ..support.sdk import Clients, subscribe
from ..support.timing import MS, wait_until

EXAMPLE = Path(__file__).parents[2] / "examples" / "deploy" / "nats.toml"


async def test_the_example_publishes_over_nats_and_keeps_history_in_redis(
    start_nodes: StartNodes, make_client: Clients
) -> None:
    engine = tomllib.loads(EXAMPLE.read_text())["engine"]
    with private_redis() as redis, private_nats() as nats:
        engine.update(redis_url=redis.url, nats_url=nats.url)
        one, two = await start_nodes(cluster_config(NatsDeployment(redis, nats), engine=engine), 2)
        client, events = await make_client.connected(two.ws_url, "ann")
        await events.wait("connected")
        received = await subscribe(client, "rec:feed")
        for n in range(1, 4):
            await api(one.url, "publish", {"channel": "rec:feed", "data": {"n": n}})
        await wait_until(lambda: len(received.data) == 3, timeout=5000 * MS, what="three publications")
        assert received.data == [{"n": 1}, {"n": 2}, {"n": 3}]
        client_redis = aioredis.Redis.from_url(redis.url)
        try:
            # History in Redis, under the example's prefix; nothing on Redis pub/sub.
            assert await client_redis.xlen(f"{engine['redis_prefix']}.stream.{{rec:feed}}") == 3
            assert await client_redis.pubsub_channels() == []
        finally:
            await client_redis.aclose()
