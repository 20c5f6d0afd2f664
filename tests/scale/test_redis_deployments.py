"""The Redis engines of ``examples/deploy/``: two nodes on three Redis shards, and on a Redis
Cluster, as the examples configure them with private servers swapped in; channels spread over
every shard or master and reach both nodes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.crc import key_slot

from wavecast.engines.redis.sharded import consistent_index

from ..support.cluster import StartNodes, cluster_config
from ..support.http import api
from ..support.redis import private_redis_cluster, private_redis_shards
from ..support.sdk import Clients, subscribe
from ..support.timing import MS, wait_until

EXAMPLES = Path(__file__).parents[2] / "examples" / "deploy"
EXAMPLE = EXAMPLES / "redis-shards.toml"


async def publish_across(
    start_nodes: StartNodes, make_client: Clients, config: dict[str, Any], channels: list[str]
) -> None:
    """Start two nodes; publish to each channel on the first; a client of the second gets each."""
    one, two = await start_nodes(config, 2)
    client, events = await make_client.connected(two.ws_url, "ann")
    await events.wait("connected")
    received = {channel: await subscribe(client, channel) for channel in channels}
    for channel in channels:
        await api(one.url, "publish", {"channel": channel, "data": {"to": channel}})
    for channel, events_of in received.items():
        await wait_until(lambda e=events_of, c=channel: e.data == [{"to": c}], timeout=5000 * MS, what=channel)


async def test_the_example_spreads_channels_over_its_shards(start_nodes: StartNodes, make_client: Clients) -> None:
    engine = tomllib.loads(EXAMPLE.read_text())["engine"]
    with private_redis_shards(len(engine["redis_shards"])) as servers:
        engine["redis_shards"] = [server.url for server in servers]
        channels = [f"rec:{n}" for n in range(9)]
        await publish_across(start_nodes, make_client, cluster_config(servers, engine=engine), channels)
        for index, server in enumerate(servers):
            redis = aioredis.Redis.from_url(server.url)
            try:
                streams = sorted([key.decode() async for key in redis.scan_iter("wavecast.stream.*")])
            finally:
                await redis.aclose()
            mine = [c for c in channels if consistent_index(c, len(servers)) == index]
            assert streams == sorted(f"wavecast.stream.{{{c}}}" for c in mine)
        assert {consistent_index(c, len(servers)) for c in channels} == {0, 1, 2}


async def test_the_cluster_example_places_channels_by_slot(start_nodes: StartNodes, make_client: Clients) -> None:
    engine = tomllib.loads((EXAMPLES / "redis-cluster.toml").read_text())["engine"]
    with private_redis_cluster(3) as redis_cluster:
        engine["redis_cluster"] = redis_cluster.urls[: len(engine["redis_cluster"])]
        channels = [f"rec:{n}" for n in range(9)]
        await publish_across(start_nodes, make_client, cluster_config(redis_cluster, engine=engine), channels)
        owners = {channel: redis_cluster.owner(key_slot(channel.encode())) for channel in channels}
        assert len(set(owners.values())) == 3
        for channel, owner in owners.items():
            redis = aioredis.Redis(port=owner.port)
            try:
                assert await redis.exists(f"wavecast.stream.{{{channel}}}") == 1
            finally:
                await redis.aclose()
