"""The Redis engine: many nodes share channels, history and presence through a redis-server.

Needs redis-py (``pip install wavecast[redis]``); imported only when configured.
"""

from __future__ import annotations

from typing import Any

from .broker import RedisBroker
from .presence import RedisPresenceManager

__all__ = ["RedisBroker", "RedisEngine", "RedisPresenceManager"]


class RedisEngine:
    """A broker and a presence manager sharing one connection pool.

    Args:
        url: the Redis server, ``redis://host:port/db``.
        prefix: the prefix of every key and pub/sub channel, to share one Redis.
        **kwargs: passed to ``redis.asyncio.Redis.from_url`` (timeouts, pool size, ...).
    """

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "wavecast", **kwargs: Any) -> None:
        import redis.asyncio as aioredis

        kwargs.setdefault("socket_connect_timeout", 2.0)
        kwargs.setdefault("socket_timeout", 5.0)
        kwargs.setdefault("health_check_interval", 10)
        try:
            from redis.maint_notifications import MaintNotificationsConfig
        except ImportError:  # pragma: no cover - redis-py before 7 has no maintenance notifications
            pass
        else:
            # With them on ("auto" by default), the pool hands out connections without checking
            # that the server didn't close them: after a Redis restart, the next command on each
            # pooled connection failed, though Redis was back. Redis OSS doesn't send them anyway.
            kwargs.setdefault("maint_notifications_config", MaintNotificationsConfig(enabled=False))
        self.client = aioredis.Redis.from_url(url, **kwargs)
        self._users = 2
        self.broker = RedisBroker(self.client, prefix=prefix, release=self._release)
        self.presence_manager = RedisPresenceManager(self.client, prefix=prefix, release=self._release)

    async def _release(self) -> None:
        """Close the shared pool once both the broker and the presence manager are closed."""
        self._users -= 1
        if self._users == 0:
            await self.client.aclose()

    async def close(self) -> None:
        await self.broker.close()
        await self.presence_manager.close()
