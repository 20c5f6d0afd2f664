"""The cluster-wide ``info`` and ``channels`` of Centrifugo's server API, asked through ``cent``
of ``wavecast serve`` nodes on one Redis: every live node with its counts, every node's
channels summed, on the admin page too, a node killed dropping out, and each worker of
``--workers`` a node of its own."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from cent import AsyncClient, ChannelsRequest, InfoRequest

from ..support.cluster import StartNodes, cluster_config
from ..support.config import ADMIN_PASSWORD, API_KEY
from ..support.http import basic_auth, http
from ..support.redis import RedisServer
from ..support.sdk import Clients, subscribe
from ..support.serve import ServeProcess
from ..support.timing import MS, TIMEOUT_FACTOR

#: Seconds between two infos of a node: a killed node is forgotten 2 x 0.5 + 1 s later.
INTERVAL = 0.5


def config(redis: RedisServer, **server: Any) -> dict[str, Any]:
    return cluster_config(redis, client={"node_info_interval": INTERVAL}, server=server)


async def node_names(node: ServeProcess) -> list[str]:
    async with AsyncClient(node.url + "/api", API_KEY) as api:
        return [n.name for n in (await api.info(InfoRequest())).nodes]


async def test_info_and_channels_cover_every_node_until_one_is_killed(
    own_redis: RedisServer, start_nodes: StartNodes, make_client: Clients
) -> None:
    one, two = await start_nodes(config(own_redis), 2)
    for user, node, channels in (("ann", one, ["chat:room", "news:a"]), ("bob", two, ["chat:room"])):
        client, events = await make_client.connected(node.ws_url, user)
        await events.wait("connected")
        for channel in channels:
            await subscribe(client, channel)
    await make_client.connected(two.ws_url, "bob")

    async with AsyncClient(one.url + "/api", API_KEY) as api:
        # This node first, then the others, each with its own counts: another node's are
        # those of its last info, at most an interval old.
        expected = [("node1", 1, 1, 2, 2), ("node2", 2, 1, 1, 1)]
        async with asyncio.timeout(5000 * MS):
            while True:
                nodes = (await api.info(InfoRequest())).nodes
                if [(n.name, n.num_clients, n.num_users, n.num_subs, n.num_channels) for n in nodes] == expected:
                    break
                await asyncio.sleep(50 * MS)
        assert len({n.uid for n in nodes}) == 2 and all(n.version for n in nodes)
        channels = (await api.channels(ChannelsRequest())).channels
        assert {name: c.num_clients for name, c in channels.items()} == {"chat:room": 2, "news:a": 1}
        only_chat = (await api.channels(ChannelsRequest(pattern="chat:*"))).channels
        assert list(only_chat) == ["chat:room"]

        # The admin page shows the same cluster; message counts only for the node asked.
        admin = (await http("GET", one.url + "/admin/api/info", headers=basic_auth(ADMIN_PASSWORD))).json()
        assert [(n["name"], n["num_clients"], n["num_subscriptions"]) for n in admin["nodes"]] == [
            ("node1", 1, 2),
            ("node2", 2, 1),
        ]
        assert "publications" in admin["nodes"][0] and "publications" not in admin["nodes"][1]
        assert admin["channels"] == {"chat:room": 2, "news:a": 1}

        # SIGKILL: no goodbye; node two drops out when its info stops coming.
        two.kill()
        async with asyncio.timeout((2 * INTERVAL + 1) * 3 * TIMEOUT_FACTOR):
            while len((await api.info(InfoRequest())).nodes) > 1:
                await asyncio.sleep(100 * MS)
        channels = (await api.channels(ChannelsRequest())).channels
        assert {name: c.num_clients for name, c in channels.items()} == {"chat:room": 1, "news:a": 1}


async def test_a_node_that_stops_cleanly_leaves_at_once(own_redis: RedisServer, start_nodes: StartNodes) -> None:
    one, two = await start_nodes(config(own_redis), 2)
    async with asyncio.timeout(5000 * MS):
        while await node_names(one) != ["node1", "node2"]:
            await asyncio.sleep(50 * MS)
    await two.stop(signal.SIGTERM)
    assert await node_names(one) == ["node1"]


async def test_each_worker_is_a_node_with_a_name_and_uid_of_its_own(
    own_redis: RedisServer, start_nodes: StartNodes
) -> None:
    (supervisor,) = await start_nodes(config(own_redis, workers=2))
    async with AsyncClient(supervisor.url + "/api", API_KEY) as api:
        async with asyncio.timeout(10_000 * MS):
            while len(nodes := (await api.info(InfoRequest())).nodes) < 2:
                await asyncio.sleep(50 * MS)
    assert sorted(n.name for n in nodes) == ["node1_1", "node1_2"]
    assert len({n.uid for n in nodes}) == 2
    assert await supervisor.stop(signal.SIGTERM) == 0
