"""Idempotent publication across nodes on Redis: retries through ``cent`` to any node, and
duplicates racing on two nodes, reach subscribers once; a Redis that lost its data has
forgotten the window, and a retry after it publishes again; a persistent one hasn't."""

from __future__ import annotations

import asyncio

import pytest
from cent import AsyncClient, HistoryRequest, PublishRequest

from ..support.cluster import two_nodes
from ..support.config import API_KEY
from ..support.redis import RedisServer, restart
from ..support.sdk import Clients, subscribe
from ..support.servers import StartWavecast
from ..support.timing import MS, wait_until


@pytest.mark.parametrize("channel", ["rec:a", "news:a"], ids=["history", "no-history"])
async def test_duplicates_racing_on_two_nodes_are_delivered_once(
    own_redis: RedisServer, start_wavecast: StartWavecast, make_client: Clients, channel: str
) -> None:
    one, two = await two_nodes(own_redis, start_wavecast)
    client, events = await make_client.connected(one.ws_url, "ann")
    await events.wait("connected")
    received = await subscribe(client, channel)
    async with AsyncClient(one.url + "/api", API_KEY) as first, AsyncClient(two.url + "/api", API_KEY) as second:
        for n in range(5):
            request = PublishRequest(channel=channel, data={"n": n}, idempotency_key=f"key-{n}")
            results = await asyncio.gather(*(api.publish(request) for api in (first, second) for _ in range(3)))
            assert len({(result.offset, result.epoch) for result in results}) == 1
        await first.publish(PublishRequest(channel=channel, data={"n": "last"}))
    await wait_until(lambda: received.data[-1:] == [{"n": "last"}], what="the last publication")
    assert received.data == [{"n": n} for n in range(5)] + [{"n": "last"}]


@pytest.mark.parametrize("persistent", [True, False], ids=["persistent", "lost"])
async def test_a_retry_after_a_redis_restart(
    request: pytest.FixtureRequest, start_wavecast: StartWavecast, make_client: Clients, persistent: bool
) -> None:
    server: RedisServer = request.getfixturevalue("persistent_redis" if persistent else "own_redis")
    one, two = await two_nodes(server, start_wavecast)
    client, events = await make_client.connected(one.ws_url, "ann")
    await events.wait("connected")
    received = await subscribe(client, "rec:a")
    retry = PublishRequest(channel="rec:a", data={"n": 1}, idempotency_key="order-1")
    async with AsyncClient(two.url + "/api", API_KEY) as api:
        first = await api.publish(retry)
        await wait_until(lambda: len(received.data) == 1, what="the publication")

        await restart(server, down=300 * MS)
        async with asyncio.timeout(10_000 * MS):
            while True:
                try:
                    again = await api.publish(retry)
                    break
                except Exception:  # Redis isn't back for this node yet: the backend retries
                    await asyncio.sleep(50 * MS)
    if persistent:
        # The result survived with the stream: the retry is still a repeat.
        assert (again.offset, again.epoch) == (first.offset, first.epoch)
        await asyncio.sleep(300 * MS)
        assert received.data == [{"n": 1}]
    else:
        # Redis forgot the result with the stream: the retry publishes again, as the first
        # publication of a new epoch (a subscriber learns that its stream is lost).
        assert again.epoch != first.epoch and again.offset == 1
        async with AsyncClient(one.url + "/api", API_KEY) as api:
            history = await api.history(HistoryRequest(channel="rec:a", limit=10))
        assert history.epoch == again.epoch
        assert [(p.offset, p.data) for p in history.publications] == [(1, {"n": 1})]
