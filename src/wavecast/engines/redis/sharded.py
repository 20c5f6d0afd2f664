"""The Redis engine sharded over several standalone redis-servers, as Centrifugo's list of
``redis_address``: each channel lives on one of them, chosen by consistent hashing.

Each shard is a whole :class:`~wavecast.engines.redis.RedisEngine` for its channels: its
stream, history, idempotency results, presence and pub/sub. Publications of a channel only
ever touch its shard, so shards add up: N servers carry N times the publications, and a
shard that goes down takes only its own channels with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ...exceptions import ConfigError
from ..base import (
    IDEMPOTENT_RESULT_TTL,
    BrokerEventHandler,
    ClientInfo,
    HistoryResult,
    PresenceStats,
    Publication,
    StreamPosition,
)
from . import RedisEngine
from .broker import RedisBroker
from .presence import RedisPresenceManager

__all__ = ["ShardedRedisBroker", "ShardedRedisEngine", "ShardedRedisPresenceManager", "consistent_index"]

_FNV64_OFFSET = 0xCBF29CE484222325
_FNV64_PRIME = 0x100000001B3
_MASK64 = 2**64 - 1


def consistent_index(channel: str, shards: int) -> int:
    """The shard of ``channel`` among ``shards``: FNV-1a 64 of its UTF-8 bytes, then jump
    consistent hashing, as Centrifugo places channels on its Redis shards.

    Adding a shard to N moves only 1/(N+1) of the channels, and a wavecast node and a
    Centrifugo node put a channel on the same shard of the same list.
    """
    key = _FNV64_OFFSET
    for byte in channel.encode():
        key = ((key ^ byte) * _FNV64_PRIME) & _MASK64
    bucket, jump = -1, 0
    while jump < shards:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & _MASK64
        jump = int((bucket + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return bucket


class ShardedRedisBroker:
    """Routes each channel to the broker of its shard.

    Control messages (node info, surveys) go through the first shard only: every node reads
    them from one place, so a survey's request and its answers are each delivered once. While
    that shard is down, node info and surveys wait for it; publications to channels of the
    other shards go on.
    """

    def __init__(self, brokers: Sequence[RedisBroker]) -> None:
        if not brokers:
            raise ConfigError("sharding needs at least one Redis")
        self.shards = list(brokers)

    def shard(self, channel: str) -> RedisBroker:
        return self.shards[consistent_index(channel, len(self.shards))]

    async def start(self, handler: BrokerEventHandler) -> None:
        for broker in self.shards:
            await broker.start(handler)

    async def close(self) -> None:
        for broker in self.shards:
            await broker.close()

    async def publish(
        self,
        channel: str,
        publication: Publication,
        *,
        history_size: int = 0,
        history_ttl: float = 0,
        idempotency_key: str | None = None,
        idempotent_ttl: float = IDEMPOTENT_RESULT_TTL,
    ) -> StreamPosition | None:
        return await self.shard(channel).publish(
            channel,
            publication,
            history_size=history_size,
            history_ttl=history_ttl,
            idempotency_key=idempotency_key,
            idempotent_ttl=idempotent_ttl,
        )

    async def publish_control(self, message: bytes, *, node: str | None = None) -> None:
        await self.shards[0].publish_control(message, node=node)

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        await self.shard(channel).publish_join(channel, info)

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        await self.shard(channel).publish_leave(channel, info)

    async def subscribe(self, channel: str) -> None:
        await self.shard(channel).subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        await self.shard(channel).unsubscribe(channel)

    async def history(
        self, channel: str, *, since: StreamPosition | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryResult:
        return await self.shard(channel).history(channel, since=since, limit=limit, reverse=reverse)

    async def remove_history(self, channel: str) -> None:
        await self.shard(channel).remove_history(channel)


class ShardedRedisPresenceManager:
    """Keeps each channel's presence on the shard of its publications."""

    def __init__(self, managers: Sequence[RedisPresenceManager]) -> None:
        if not managers:
            raise ConfigError("sharding needs at least one Redis")
        self.shards = list(managers)

    def shard(self, channel: str) -> RedisPresenceManager:
        return self.shards[consistent_index(channel, len(self.shards))]

    async def start(self) -> None:
        for manager in self.shards:
            await manager.start()

    async def close(self) -> None:
        for manager in self.shards:
            await manager.close()

    async def add_presence(self, channel: str, client: str, info: ClientInfo, *, ttl: float) -> None:
        await self.shard(channel).add_presence(channel, client, info, ttl=ttl)

    async def remove_presence(self, channel: str, client: str, user: str) -> None:
        await self.shard(channel).remove_presence(channel, client, user)

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        return await self.shard(channel).presence(channel)

    async def presence_stats(self, channel: str) -> PresenceStats:
        return await self.shard(channel).presence_stats(channel)


class ShardedRedisEngine:
    """A :class:`RedisEngine` per URL, channels spread over them by :func:`consistent_index`.

    Every node of a deployment must list the same servers in the same order: the order places
    the channels. ``kwargs`` go to each :class:`RedisEngine` (its pool size per shard, ...).

    Raises:
        ConfigError: ``urls`` is empty.
    """

    def __init__(self, urls: Sequence[str], *, prefix: str = "wavecast", **kwargs: Any) -> None:
        if not urls:
            raise ConfigError("sharding needs at least one Redis URL")
        self.engines = [RedisEngine(url, prefix=prefix, **kwargs) for url in urls]
        self.broker = ShardedRedisBroker([engine.broker for engine in self.engines])
        self.presence_manager = ShardedRedisPresenceManager([engine.presence_manager for engine in self.engines])

    async def close(self) -> None:
        await self.broker.close()
        await self.presence_manager.close()
