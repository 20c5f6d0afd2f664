"""Presence on Redis: a hash of infos and a sorted set of expiry times per channel."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from ...exceptions import EngineError
from ..base import ClientInfo, PresenceStats
from .codec import decode_info, encode_info
from .scripts import Scripts

__all__ = ["RedisPresenceManager"]


class RedisPresenceManager:
    """Presence shared by every node; each node refreshes its own clients' entries.

    Args:
        client: a ``redis.asyncio.Redis`` client.
        prefix: the prefix of every key.
        release: called by :meth:`close`, to release a client shared with the broker.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "wavecast",
        release: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.redis = client
        self.prefix = prefix
        self.scripts = Scripts(client)
        self._release = release

    def _keys(self, channel: str) -> list[str]:
        return [f"{self.prefix}.presence.data.{{{channel}}}", f"{self.prefix}.presence.expire.{{{channel}}}"]

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            await release()

    async def add_presence(self, channel: str, client: str, info: ClientInfo, *, ttl: float) -> None:
        try:
            await self.scripts.presence_add(
                # The time to the microsecond and the TTL rounded up (EXPIRE takes whole
                # seconds): truncating both made entries expire up to two seconds early.
                keys=self._keys(channel),
                args=[client, encode_info(info), max(math.ceil(ttl), 1), time.time()],
            )
        except (RedisError, OSError) as exc:
            raise EngineError(f"presence of {channel} failed: {exc}") from exc

    async def remove_presence(self, channel: str, client: str, user: str) -> None:
        try:
            await self.scripts.presence_remove(keys=self._keys(channel), args=[client])
        except (RedisError, OSError) as exc:
            raise EngineError(f"presence of {channel} failed: {exc}") from exc

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        try:
            flat = await self.scripts.presence_get(keys=self._keys(channel), args=[time.time()])
        except (RedisError, OSError) as exc:
            raise EngineError(f"presence of {channel} failed: {exc}") from exc
        return {
            (client.decode() if isinstance(client, bytes) else client): decode_info(info)
            for client, info in zip(flat[::2], flat[1::2], strict=True)
        }

    async def presence_stats(self, channel: str) -> PresenceStats:
        clients = await self.presence(channel)
        return PresenceStats(num_clients=len(clients), num_users=len({info.user for info in clients.values()}))
