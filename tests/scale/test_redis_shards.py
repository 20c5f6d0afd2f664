"""``examples/deploy/redis-shards.toml``: two nodes on three Redis shards, as the example runs them,
with its servers swapped for private ones; channels spread over every shard and reach both nodes."""

from __future__ import annotations

import tomllib
from pathlib import Path

import redis.asyncio as aioredis

from wavecast.engines.redis.sharded import consistent_index

from ..support.cluster import StartNodes, cluster_config
from ..support.http import api
from ..support.redis import private_redis_shards
from ..support.sdk import Clients, subscribe
from ..support.timing import MS, wait_until

EXAMPLE = Path(__file__).parents[2] / "examples" / "deploy" / "redis-shards.toml"


async def test_the_example_spreads_channels_over_its_shards(start_nodes: StartNodes, make_client: Clients) -> None:
    engine = tomllib.loads(EXAMPLE.read_text())["engine"]
    with private_redis_shards(len(engine["redis_shards"])) as servers:
        engine["redis_shards"] = [server.url for server in servers]
        one, two = await start_nodes(cluster_config(servers, engine=engine), 2)
        client, events = await make_client.connected(two.ws_url, "ann")
        await events.wait("connected")
        channels = [f"rec:{n}" for n in range(9)]
        received = {channel: await subscribe(client, channel) for channel in channels}
        for channel in channels:
            await api(one.url, "publish", {"channel": channel, "data": {"to": channel}})
        for channel, events_of in received.items():
            await wait_until(lambda e=events_of, c=channel: e.data == [{"to": c}], timeout=5000 * MS, what=channel)
        for index, server in enumerate(servers):
            redis = aioredis.Redis.from_url(server.url)
            try:
                streams = sorted([key.decode() async for key in redis.scan_iter("wavecast.stream.*")])
            finally:
                await redis.aclose()
            mine = [c for c in channels if consistent_index(c, len(servers)) == index]
            assert streams == sorted(f"wavecast.stream.{{{c}}}" for c in mine)
        assert {consistent_index(c, len(servers)) for c in channels} == {0, 1, 2}
