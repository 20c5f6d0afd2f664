"""The Redis engine on a Redis Cluster (3 masters, 3 replicas) and sharded over 3 standalone
servers, while one master or shard dies: publications to its channels fail with an error,
never a silent success, until it is back (its replica promoted, or the server restarted);
the channels of the other shards are unaffected throughout; a subscriber recovers every
acknowledged publication from history once told that its channels' continuity was lost."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest
from redis.crc import key_slot

from wavecast.engines import Publication, StreamPosition
from wavecast.engines.redis.cluster import RedisClusterEngine
from wavecast.engines.redis.sharded import ShardedRedisEngine, consistent_index
from wavecast.exceptions import EngineError

from ..engines.helpers import RecordingHandler
from ..support.cluster import ChaosReport
from ..support.redis import RedisServer, private_redis_cluster, private_redis_shards
from ..support.timing import MS, wait_until

Engine = RedisClusterEngine | ShardedRedisEngine
HISTORY = {"history_size": 100_000, "history_ttl": 600}


def kill(server: RedisServer) -> None:
    """SIGKILL: no shutdown, no last write to disk or to replicas."""
    assert server.process is not None
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    server.process = None


async def run_fault(
    report: ChaosReport,
    make_engine: Callable[[], Engine],
    channels: list[str],
    victims: set[str],
    fault: Callable[[], Any],
    *,
    before: float,
    after: float,
) -> None:
    """Publish to ``channels`` round-robin; ``before`` seconds in, run ``fault`` (which takes the
    shard of ``victims`` down and brings it back, or lets it fail over); stop ``after`` seconds
    after the victims' channels publish again. Count everything in ``report``."""
    publisher, subscriber, handler = make_engine(), make_engine(), RecordingHandler("subscriber")
    await publisher.broker.start(RecordingHandler("publisher"))
    await subscriber.broker.start(handler)
    try:
        for channel in channels:
            await subscriber.broker.subscribe(channel)
        acknowledged: dict[int, tuple[str, int]] = {}
        failures: dict[str, int] = {}
        fault_at = back_at = 0.0
        seq = 0
        start = time.monotonic()
        faulted = asyncio.Event()

        async def cause() -> None:
            nonlocal fault_at
            await asyncio.sleep(before)
            fault_at = time.monotonic()
            faulted.set()
            await fault()

        trouble = asyncio.create_task(cause())
        while back_at == 0 or time.monotonic() < back_at + after:
            assert time.monotonic() - start < before + 60, "the victims' channels never came back"
            for channel in channels:
                seq += 1
                report.published += 1
                try:
                    position = await publisher.broker.publish(channel, Publication(str(seq).encode()), **HISTORY)
                except EngineError:
                    report.failed += 1
                    failures[channel] = failures.get(channel, 0) + 1
                    continue
                assert position is not None
                acknowledged[seq] = (channel, position.offset)
                if faulted.is_set() and channel in victims and back_at == 0 and failures.get(channel):
                    back_at = time.monotonic()
            await asyncio.sleep(5 * MS)
        await trouble
        report.acknowledged = set(acknowledged)
        report.extra["failover_s"] = round(back_at - fault_at, 2)
        assert set(failures) <= victims, f"channels of healthy shards failed: {set(failures) - victims}"
        assert failures, "publications to the dead shard's channels never failed"

        # Everything acknowledged is delivered live, or recovered from history by a subscriber
        # told that the channel's continuity was lost, as the node makes its clients recover.
        last = {
            channel: acknowledged[max(s for s, (c, _) in acknowledged.items() if c == channel)][1]
            for channel in channels
        }

        def delivered(channel: str) -> list[int]:
            return [int(e.publication.data) for e in handler.events if e.kind == "publication" and e.channel == channel]

        def settled() -> bool:
            # A channel got its last publication live, or was told that it may have missed some.
            told = {e.channel for e in handler.events if e.kind == "continuity_lost"}
            live = {
                e.channel for e in handler.events if e.kind == "publication" and e.publication.offset == last[e.channel]
            }
            return told | live >= set(channels)

        await wait_until(settled, timeout=15_000 * MS, what="every channel's last publication, or its loss")
        lost_continuity = {e.channel for e in handler.events if e.kind == "continuity_lost"}
        received: list[int] = []
        for channel in channels:
            live = delivered(channel)
            offsets = [e.publication.offset for e in handler.events if e.kind == "publication" and e.channel == channel]
            gaps = [n for n in range(1, last[channel] + 1) if n not in set(offsets)]
            if gaps:
                assert channel in lost_continuity, f"{channel} missed offsets {gaps[:5]} without being told"
                epoch = next(e.position.epoch for e in handler.events if e.channel == channel and e.position)
                recovered = await subscriber.broker.history(channel, since=StreamPosition(gaps[0] - 1, epoch))
                live = [s for s, o in zip(live, offsets, strict=True) if o < gaps[0]]
                live += [int(p.data) for p in recovered.publications]
            received += live
        report.received = {"subscriber": received}
        report.extra["recovered_channels"] = len(lost_continuity)
        report.check()
    finally:
        await publisher.close()
        await subscriber.close()


def _channels(count: int) -> list[str]:
    return [f"feed{n}" for n in range(count)]


async def kill_a_master(report: ChaosReport, count: int, *, before: float, after: float) -> None:
    """Publish to ``count`` channels of a 3-master cluster and SIGKILL the master of the first."""
    with private_redis_cluster(3) as cluster:
        channels = _channels(count)
        owners = {channel: cluster.owner(key_slot(channel.encode())) for channel in channels}
        victim = owners[channels[0]]
        victims = {c for c, owner in owners.items() if owner is victim}
        assert len(set(owners.values())) == 3

        async def fault() -> None:
            await asyncio.to_thread(kill, victim)

        await run_fault(
            report,
            lambda: RedisClusterEngine(cluster.urls[:1], prefix="fault", socket_timeout=1.0),
            channels,
            victims,
            fault,
            before=before,
            after=after,
        )


async def test_a_master_killed_fails_its_channels_until_its_replica_takes_over(
    chaos_report: Callable[[str], ChaosReport],
) -> None:
    await kill_a_master(chaos_report("redis-cluster master SIGKILL"), 12, before=1.0, after=1.0)


async def shard_down(report: ChaosReport, count: int, *, down: float, before: float, after: float) -> None:
    """Publish to ``count`` channels on 3 Redis shards; SIGKILL the first channel's shard and start
    it again ``down`` seconds later, with what it had saved."""
    with private_redis_shards(3) as servers:
        for server in servers:
            server.persistent = True
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
        channels = _channels(count)
        victim = consistent_index(channels[0], 3)
        victims = {c for c in channels if consistent_index(c, 3) == victim}

        async def fault() -> None:
            await asyncio.to_thread(kill, servers[victim])
            await asyncio.sleep(down)
            await asyncio.to_thread(servers[victim].start)

        await run_fault(
            report,
            lambda: ShardedRedisEngine([s.url for s in servers], prefix="fault", socket_timeout=1.0),
            channels,
            victims,
            fault,
            before=before,
            after=after,
        )


async def test_a_shard_down_fails_its_channels_until_it_is_back(chaos_report: Callable[[str], ChaosReport]) -> None:
    await shard_down(chaos_report("redis shards: one SIGKILL and restarted"), 12, down=1.0, before=1.0, after=1.0)


@pytest.mark.chaos
async def test_a_shard_down_under_a_longer_load(chaos_report: Callable[[str], ChaosReport]) -> None:
    await shard_down(
        chaos_report("redis shards: one SIGKILL, 3 s down, 100 channels"), 100, down=3.0, before=5.0, after=10.0
    )


@pytest.mark.chaos
async def test_a_master_killed_under_a_longer_load(chaos_report: Callable[[str], ChaosReport]) -> None:
    await kill_a_master(chaos_report("redis-cluster master SIGKILL, 100 channels"), 100, before=5.0, after=10.0)
