"""The Redis engine: many nodes share channels, history and presence through a redis-server.

Needs redis-py (``pip install wavecast[redis]``); imported only when configured.
"""

from __future__ import annotations

from typing import Any

from ...exceptions import ConfigError
from .broker import RedisBroker
from .presence import RedisPresenceManager

__all__ = ["RedisBroker", "RedisEngine", "RedisPresenceManager", "SharedClient"]


class SharedClient:
    """A broker and a presence manager that share one client, closed after both."""

    client: Any
    broker: Any
    presence_manager: Any
    _users = 2

    async def _release(self) -> None:
        """Close the shared pool once both the broker and the presence manager are closed."""
        self._users -= 1
        if self._users == 0:
            await self.client.aclose()

    async def close(self) -> None:
        await self.broker.close()
        await self.presence_manager.close()


class RedisEngine(SharedClient):
    """A broker and a presence manager sharing one connection pool.

    Args:
        url: the Redis server, ``redis://host:port/db``.
        prefix: the prefix of every key and pub/sub channel, to share one Redis.
        max_connections: connections to Redis at most, the pub/sub one included (so at
            least 2); a command that finds them all busy waits for one. ``None``: no bound.
        pool_timeout: seconds a command waits for a free connection before failing with
            :class:`~wavecast.exceptions.EngineError`. ``None``: as long as it takes.
        **kwargs: passed to the connection pool's ``from_url`` (timeouts, ...).

    Raises:
        ConfigError: ``max_connections`` is below 2.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "wavecast",
        max_connections: int | None = 100,
        pool_timeout: float | None = 5.0,
        **kwargs: Any,
    ) -> None:
        import redis.asyncio as aioredis

        if max_connections is not None and max_connections < 2:
            # The pub/sub connection holds one from the start: commands need another.
            raise ConfigError(f"max_connections must be at least 2, got {max_connections}")
        self.max_connections = max_connections

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
        # A bounded pool that makes commands wait: redis-py's default pool raised "Too many
        # connections" past 100 commands at once, so a burst of subscriptions (a reconnect storm)
        # failed some of them.
        pool: Any
        if max_connections is None:
            pool = aioredis.ConnectionPool.from_url(url, max_connections=2**31, **kwargs)
        else:
            pool = aioredis.BlockingConnectionPool.from_url(
                url, max_connections=max_connections, timeout=pool_timeout, **kwargs
            )
        self.client = aioredis.Redis.from_pool(pool)
        self.broker = RedisBroker(self.client, prefix=prefix, release=self._release)
        self.presence_manager = RedisPresenceManager(self.client, prefix=prefix, release=self._release)
