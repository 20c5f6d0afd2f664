"""The cluster view's rules, with nodes on one in-process control bus and a fake clock: who is
live, when a node is forgotten, and what a survey gathers. Over Redis and real sockets:
``tests/scale/test_cluster_view.py``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from wavecast.exceptions import EngineError
from wavecast.realtime import cluster as cluster_module
from wavecast.realtime.cluster import Cluster, Emulate, NodeInfo

from ..support.clock import FakeClock


class Bus:
    """Control messages between the clusters of a test, as an engine's control channel carries them."""

    def __init__(self) -> None:
        self.clusters: dict[str, Cluster] = {}
        #: Nodes that receive nothing: alive in the others' view until they expire, but deaf.
        self.deaf: set[str] = set()

    async def publish_control(self, message: bytes, *, node: str | None = None) -> None:
        for uid, cluster in list(self.clusters.items()):
            if (node is None or node == uid) and uid not in self.deaf:
                cluster.on_control(message)


def info(uid: str, clients: int = 0) -> NodeInfo:
    return NodeInfo(
        uid=uid, name=f"name-{uid}", version="1", num_clients=clients, num_users=0, num_channels=0, num_subs=0, uptime=0
    )


StartCluster = Callable[..., Cluster]


@pytest.fixture
async def nodes() -> AsyncIterator[tuple[Bus, FakeClock, StartCluster]]:
    bus, clock, tasks = Bus(), FakeClock(), set[asyncio.Task[Any]]()

    def spawn(coroutine: Any) -> None:
        tasks.add(asyncio.get_running_loop().create_task(coroutine))

    def make(
        uid: str, channels: dict[str, int] | None = None, clients: int = 0, emulate: Emulate | None = None
    ) -> Cluster:
        cluster = Cluster(
            uid,
            bus,  # type: ignore[arg-type]
            lambda: info(uid, clients),
            lambda: dict(channels or {}),
            interval=3600,  # tests send infos themselves
            survey_timeout=0.2,
            spawn=spawn,
            clock=clock,
            emulate=emulate,
        )
        bus.clusters[uid] = cluster
        return cluster

    yield bus, clock, make
    await asyncio.gather(*tasks)


async def test_nodes_list_this_node_first_then_every_node_that_sent_its_info(
    nodes: tuple[Bus, FakeClock, StartCluster],
) -> None:
    _, _, make = nodes
    one, two, three = make("c", clients=1), make("a", clients=2), make("b", clients=3)
    for cluster in (one, two, three):
        await cluster.publish_info()
    assert [(n.uid, n.num_clients) for n in one.nodes()] == [("c", 1), ("a", 2), ("b", 3)]
    assert [n.uid for n in two.nodes()] == ["a", "b", "c"]


async def test_a_node_answers_the_info_of_a_node_new_to_it_with_its_own(
    nodes: tuple[Bus, FakeClock, StartCluster],
) -> None:
    _, _, make = nodes
    one = make("one")
    await one.publish_info()  # nobody else yet
    two = make("two")
    await two.publish_info()
    for _ in range(3):  # one's answer goes in the background
        await asyncio.sleep(0)
    assert [n.uid for n in two.nodes()] == ["two", "one"]


async def test_a_node_that_stops_sending_is_forgotten_after_twice_the_interval_and_a_second(
    nodes: tuple[Bus, FakeClock, StartCluster],
) -> None:
    _, clock, make = nodes
    one, two = make("one"), make("two")
    await two.publish_info()
    assert one.max_delay == 2 * 3600 + 1
    clock.now += one.max_delay - 0.5
    assert [n.uid for n in one.nodes()] == ["one", "two"]
    clock.now += 1
    assert [n.uid for n in one.nodes()] == ["one"]


async def test_a_node_that_shuts_down_is_forgotten_at_once(nodes: tuple[Bus, FakeClock, StartCluster]) -> None:
    _, _, make = nodes
    one, two = make("one"), make("two")
    await two.publish_info()
    await two.stop()
    assert [n.uid for n in one.nodes()] == ["one"]


async def test_channels_sums_every_node(nodes: tuple[Bus, FakeClock, StartCluster]) -> None:
    _, _, make = nodes
    one = make("one", {"chat": 1, "news": 2})
    two = make("two", {"chat": 3})
    three = make("three", {"other": 1})
    for cluster in (two, three):
        await cluster.publish_info()
    assert await one.channels() == {"chat": 4, "news": 2, "other": 1}
    assert await make("alone", {"x": 1}).channels() == {"x": 1}


async def test_channels_leaves_out_a_node_that_doesnt_answer_in_time(
    nodes: tuple[Bus, FakeClock, StartCluster], caplog: pytest.LogCaptureFixture
) -> None:
    bus, _, make = nodes
    one, two, deaf = make("one", {"chat": 1}), make("two", {"chat": 2}), make("deaf", {"chat": 5})
    await two.publish_info()
    await deaf.publish_info()
    bus.deaf.add("deaf")
    with caplog.at_level(logging.WARNING, logger="wavecast.realtime"):
        assert await one.channels() == {"chat": 3}
    assert "no answer in 0.2 s from nodes ['deaf']" in caplog.text


async def test_a_malformed_control_message_is_ignored(
    nodes: tuple[Bus, FakeClock, StartCluster], caplog: pytest.LogCaptureFixture
) -> None:
    _, _, make = nodes
    one = make("one")
    with caplog.at_level(logging.WARNING, logger="wavecast.realtime"):
        one.on_control(b'{"type":"nonsense"}')
        one.on_control(b"\xff")
    assert caplog.text.count("ignoring a control message") == 2
    assert [n.uid for n in one.nodes()] == ["one"]


class Sessions:
    """The ``emulate`` of an owner node: its sessions, and the commands each ran, in order."""

    def __init__(self, *sessions: str) -> None:
        self.ran: dict[str, list[str | bytes]] = {session: [] for session in sessions}
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, session: str, data: str | bytes) -> str:
        if session not in self.ran:
            return "no_session"
        await self.gate.wait()
        self.ran[session].append(data)
        return "delivered"


async def live(*clusters: Cluster) -> None:
    for cluster in clusters:
        await cluster.publish_info()


async def test_a_forward_runs_on_the_owner_and_returns_its_outcome(
    nodes: tuple[Bus, FakeClock, StartCluster],
) -> None:
    _, _, make = nodes
    sessions = Sessions("s1")
    here, owner = make("here"), make("owner", emulate=sessions)
    await live(here, owner)
    assert await here.forward("owner", "s1", '{"id":1}') == "delivered"
    assert await here.forward("owner", "s1", b"\x02\x08\x02") == "delivered"
    assert await here.forward("owner", "nope", "{}") == "no_session"
    assert sessions.ran == {"s1": ['{"id":1}', b"\x02\x08\x02"]}


async def test_forwards_of_one_session_run_in_the_order_they_were_sent(
    nodes: tuple[Bus, FakeClock, StartCluster],
) -> None:
    _, _, make = nodes
    sessions = Sessions("s1")
    sessions.gate.clear()
    here, owner = make("here"), make("owner", emulate=sessions)
    await live(here, owner)
    sent = [f'{{"id":{i}}}' for i in range(50)]
    waiting = [asyncio.create_task(here.forward("owner", "s1", data)) for data in sent]
    await asyncio.sleep(0.01)
    sessions.gate.set()
    assert await asyncio.gather(*waiting) == ["delivered"] * 50
    assert sessions.ran["s1"] == sent


async def test_a_forward_to_a_node_that_isnt_live_or_left_or_is_silent(
    nodes: tuple[Bus, FakeClock, StartCluster], caplog: pytest.LogCaptureFixture
) -> None:
    bus, _, make = nodes
    sessions = Sessions("s1")
    sessions.gate.clear()
    here, owner = make("here"), make("owner", emulate=sessions)
    await live(here, owner)
    assert await here.forward("nobody", "s1", "{}") == "no_node"
    # The owner leaves while a forward waits for it: its sessions are gone with it.
    waiting = asyncio.create_task(here.forward("owner", "s1", "{}"))
    await asyncio.sleep(0.01)
    await owner.stop()
    assert await waiting == "no_session"
    assert await here.forward("owner", "s1", "{}") == "no_node"
    # A node that gets nothing: the forward waits survey_timeout, no longer.
    deaf = make("deaf", emulate=Sessions("s2"))
    await live(deaf)
    bus.deaf.add("deaf")
    assert await here.forward("deaf", "s2", "{}") == "timeout"
    assert "no answer in 0.2 s from node deaf" in caplog.text
    sessions.gate.set()


async def test_forwards_are_bounded_on_both_ends_and_fail_without_an_engine(
    nodes: tuple[Bus, FakeClock, StartCluster], monkeypatch: pytest.MonkeyPatch
) -> None:
    bus, _, make = nodes
    monkeypatch.setattr(cluster_module, "MAX_FORWARDS", 2)
    sessions = Sessions("s1")
    sessions.gate.clear()
    here, other, owner = make("here"), make("other"), make("owner", emulate=sessions)
    await live(here, other, owner)
    first = [asyncio.create_task(here.forward("owner", "s1", str(i))) for i in range(2)]
    await asyncio.sleep(0.01)
    # Two wait on "here": a third is refused there; two run on "owner": one from "other" too.
    assert await here.forward("owner", "s1", "2") == "busy"
    assert await other.forward("owner", "s1", "3") == "busy"
    sessions.gate.set()
    assert await asyncio.gather(*first) == ["delivered", "delivered"]
    assert sessions.ran["s1"] == ["0", "1"]

    async def away(message: bytes, *, node: str | None = None) -> None:
        raise EngineError("redis is away")

    monkeypatch.setattr(bus, "publish_control", away)
    assert await here.forward("owner", "s1", "4") == "unsent"
