"""The NATS engine: publications and control messages over a NATS server, history, streams
and presence in Redis, as Centrifugo combines its NATS broker with a Redis presence manager.

Needs nats-py and redis-py (``pip install wavecast[nats]``); imported only when configured.
"""

from __future__ import annotations

from typing import Any

from ..redis import RedisEngine
from .broker import NatsBroker

__all__ = ["NatsBroker", "NatsEngine"]


class NatsEngine:
    """A :class:`NatsBroker` whose history is a Redis engine's, beside that engine's presence.

    Args:
        nats_url: the NATS server, ``nats://host:port`` (several separated by commas).
        redis_url: the Redis server of history and presence, ``redis://host:port/db``.
        prefix: the prefix of every NATS subject and Redis key, to share the servers.
        **redis_kwargs: passed to :class:`~wavecast.engines.redis.RedisEngine`.
    """

    def __init__(
        self,
        nats_url: str = "nats://127.0.0.1:4222",
        redis_url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "wavecast",
        **redis_kwargs: Any,
    ) -> None:
        self.redis = RedisEngine(redis_url, prefix=prefix, **redis_kwargs)
        self.broker = NatsBroker(nats_url, streams=self.redis.broker, prefix=prefix)
        self.presence_manager = self.redis.presence_manager

    async def close(self) -> None:
        await self.broker.close()
        await self.presence_manager.close()
