"""The Redis engine on a Redis Cluster: channels placed by hash slot, publications on sharded
pub/sub (Redis 7's ``SPUBLISH``/``SSUBSCRIBE``), so that each travels only within the shard
that owns its channel.

Commands (the scripts, history, presence) go through redis-py's ``RedisCluster``, which follows
``MOVED``/``ASK`` and refreshes its slot map after a failover. Subscriptions don't: redis-py's
cluster pub/sub resubscribes on its own after a failover, without telling its caller, and a
node must know when a channel's subscription was gone to make its subscribers recover. So this
broker keeps one pub/sub connection per master that owns subscribed channels, from the
cluster's slot map, and when one is lost (its master died) or Redis moves a channel's slot
away (Redis sends ``sunsubscribe``), it refreshes the slot map, subscribes the channels on
their new owners and reports them to the node as possibly discontinuous.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff, NoBackoff
from redis.exceptions import RedisError

from ...exceptions import ConfigError, EngineError
from ..base import BrokerEventHandler
from . import SharedClient
from .broker import RedisBroker, _text, reconnect_delay
from .presence import RedisPresenceManager

__all__ = ["RedisClusterBroker", "RedisClusterEngine"]

logger = logging.getLogger("wavecast.engines.redis")


class _Link:
    """The pub/sub connection to one master, and what this node subscribed through it."""

    def __init__(self, name: str, client: aioredis.Redis) -> None:
        self.name = name
        self.client = client
        self.pubsub: Any = client.pubsub()
        #: Pub/sub channels subscribed (or being subscribed) on this master.
        self.names: set[str] = set()
        self.reader: asyncio.Task[None] | None = None


class RedisClusterBroker(RedisBroker):
    """A :class:`RedisBroker` whose channels live in the slot of their hash tag.

    Every key of a channel and its pub/sub channel are tagged ``{<channel>}``: one slot holds
    them, so the publish script appends to the stream and ``SPUBLISH``-es on one master. The
    seed of the epochs of channels without a stream is one key per channel here (a script can't
    reach a key of another slot), kept ``meta_ttl`` seconds. Control messages use plain pub/sub,
    which the cluster broadcasts to every node.

    Args:
        client: a ``redis.asyncio.cluster.RedisCluster``.
        connect: makes the client of one master's pub/sub connection from its host and port.
        **kwargs: as :class:`RedisBroker`.
    """

    publish_command = "spublish"

    def __init__(self, client: RedisCluster, *, connect: Callable[[str, int], aioredis.Redis], **kwargs: Any) -> None:
        super().__init__(client, **kwargs)  # type: ignore[arg-type]
        self.cluster = client
        self._connect = connect
        self._links: dict[str, _Link] = {}
        #: The master each pub/sub channel is subscribed on.
        self._home: dict[str, str] = {}
        self._repair_needed = asyncio.Event()
        self._repairer: asyncio.Task[None] | None = None

    # keys

    def _pubsub_channel(self, channel: str) -> str:
        return f"{self.prefix}.client.{{{channel}}}"

    def _seed_key_of(self, channel: str) -> str:
        return f"{self.prefix}.seed.{{{channel}}}"

    def _seed_ttl(self) -> int:
        return self.meta_ttl

    def _channel_of(self, name: str) -> str:
        return name[len(self.prefix) + len(".client.{") : -1]

    # lifecycle

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self._control = {self._control_channel(), self._node_channel(handler.uid)}
        try:
            async with self._lock:
                await self.cluster.initialize()
                for name in self._control:
                    await self._send_subscribe(name)
        except (RedisError, OSError) as exc:
            logger.warning("redis cluster control channels not subscribed yet (%s); retrying", exc)
            self._repair_needed.set()
        self._repairer = asyncio.get_running_loop().create_task(self._repair_forever(), name="wavecast-redis-cluster")

    async def close(self) -> None:
        self._closing = True
        if self._repairer is not None:
            self._repairer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._repairer
            self._repairer = None
        for link in list(self._links.values()):
            await self._close_link(link)
        self._links.clear()
        await super().close()

    # publishing: control messages travel by plain pub/sub, which the cluster broadcasts

    async def publish_control(self, message: bytes, *, node: str | None = None) -> None:
        name = self._control_channel() if node is None else self._node_channel(node)
        try:
            await self.cluster.publish(name, message)
        except (RedisError, OSError) as exc:
            raise EngineError(f"control message failed: {exc}") from exc

    def _queue_publish(self, pipe: Any, name: str, message: bytes) -> None:
        pipe.execute_command("SPUBLISH", name, message)

    def _queue_script(self, pipe: Any, script: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        # EVAL, not EVALSHA: a replica promoted by a failover may not have the script cached.
        pipe.eval(script.script, len(keys), *keys, *args)

    # subscriptions

    async def _send_subscribe(self, name: str) -> None:
        node = self.cluster.get_node_from_key(name)
        if node is None:
            raise EngineError(f"no Redis Cluster node serves {name}")
        link = self._links.get(node.name)
        if link is None:
            link = self._links[node.name] = _Link(node.name, self._connect(node.host, int(node.port)))
        link.names.add(name)
        self._home[name] = node.name
        try:
            if name in self._control:
                await link.pubsub.subscribe(name)
            else:
                await link.pubsub.ssubscribe(name)
        except (RedisError, OSError):
            self._drop_link(link)
            raise
        if link.reader is None:
            link.reader = asyncio.get_running_loop().create_task(self._read_link(link), name="wavecast-redis-shard")

    async def _send_unsubscribe(self, name: str) -> None:
        home = self._home.pop(name, None)
        link = self._links.get(home) if home is not None else None
        if link is None:
            return
        link.names.discard(name)
        await link.pubsub.sunsubscribe(name)

    async def _read_link(self, link: _Link) -> None:
        client_prefix = f"{self.prefix}.client."
        try:
            while not self._closing:
                message = await link.pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                kind, name = message["type"], _text(message["channel"])
                if kind in ("smessage", "message"):
                    if name.startswith(client_prefix):
                        self._dispatch(self._channel_of(name), message["data"])
                    elif self._handler is not None:
                        self._handler.on_control(message["data"])
                elif kind == "ssubscribe":
                    self._confirmed(name, self._channel_of(name))
                elif kind == "sunsubscribe" and name in link.names:
                    # Not asked for: Redis moved the channel's slot to another master.
                    link.names.discard(name)
                    self._home.pop(name, None)
                    self._lost.add(self._channel_of(name))
                    self._repair_needed.set()
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as exc:
            logger.warning("redis cluster pub/sub to %s lost (%s); subscribing on the new owners", link.name, exc)
            self._drop_link(link)
            self._repair_needed.set()
        except Exception:
            logger.exception("failed to handle a redis cluster pub/sub message")
            self._drop_link(link)
            self._repair_needed.set()

    def _drop_link(self, link: _Link) -> None:
        """Forget a master's connection; its channels are lost until subscribed again."""
        if self._links.get(link.name) is link:
            del self._links[link.name]
        client_prefix = f"{self.prefix}.client."
        for name in link.names:
            if self._home.get(name) == link.name:
                del self._home[name]
            if name.startswith(client_prefix):
                self._lost.add(self._channel_of(name))
        link.names.clear()
        asyncio.get_running_loop().create_task(self._close_link(link))

    async def _close_link(self, link: _Link) -> None:
        if link.reader is not None and link.reader is not asyncio.current_task():
            link.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await link.reader
        with contextlib.suppress(RedisError, OSError):
            await link.pubsub.aclose()
        with contextlib.suppress(RedisError, OSError):
            await link.client.aclose()

    async def _repair_forever(self) -> None:
        """Subscribe every wanted channel on the master that owns it now, after a failover or
        a slot migration, retrying with backoff while the cluster has no owner for some."""
        attempt = 0
        while not self._closing:
            await self._repair_needed.wait()
            await asyncio.sleep(reconnect_delay(attempt))
            self._repair_needed.clear()
            try:
                async with self._lock:
                    await self.cluster.nodes_manager.initialize()
                    wanted = self._control | {self._pubsub_channel(c) for c in self._channels}
                    for name in sorted(wanted):
                        home = self._home.get(name)
                        node = self.cluster.get_node_from_key(name)
                        if home is not None and node is not None and node.name == home and home in self._links:
                            continue
                        if home is not None:
                            # Still subscribed on a master that no longer owns it.
                            with contextlib.suppress(RedisError, OSError):
                                await self._send_unsubscribe(name)
                            if name not in self._control:
                                self._lost.add(self._channel_of(name))
                        await self._send_subscribe(name)
                attempt = 0
                logger.info("redis cluster pub/sub: %d channels on their owners", len(wanted))
            except (RedisError, OSError, EngineError) as exc:
                attempt += 1
                logger.warning("redis cluster pub/sub repair attempt %d failed: %s", attempt, exc)
                self._repair_needed.set()


def _node(url: str) -> ClusterNode:
    parts = urlsplit(url)
    return ClusterNode(parts.hostname or "127.0.0.1", parts.port or 6379)


class RedisClusterEngine(SharedClient):
    """A broker and a presence manager on one Redis Cluster (Redis 7 or later).

    Args:
        urls: some nodes of the cluster, ``redis://host:port``; the client learns the others.
        prefix: the prefix of every key and pub/sub channel.
        max_connections: connections to each node at most, for commands; a command that finds
            them busy waits for one. Pub/sub takes one more per master.
        **kwargs: passed to ``RedisCluster`` and to the pub/sub connections (timeouts, ...).

    Raises:
        ConfigError: ``urls`` is empty.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        prefix: str = "wavecast",
        max_connections: int = 100,
        **kwargs: Any,
    ) -> None:
        if not urls:
            raise ConfigError("a Redis Cluster needs at least one node URL")
        kwargs.setdefault("socket_connect_timeout", 2.0)
        kwargs.setdefault("socket_timeout", 5.0)
        self.max_connections = max_connections
        self.client = RedisCluster(
            startup_nodes=[_node(url) for url in urls],
            max_connections=max_connections,
            # One retry, soon: a publication to a master that died fails in a fraction of a
            # second (error 100, the SDKs try again) instead of holding its caller through the
            # whole failover, which takes the cluster about twice its node timeout.
            retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.2), retries=1),
            **kwargs,
        )

        def connect(host: str, port: int) -> aioredis.Redis:
            # No reconnection to a master that went away: the broker subscribes its channels
            # again on whichever master owns them by then.
            return aioredis.Redis(host=host, port=port, health_check_interval=10, retry=Retry(NoBackoff(), 0), **kwargs)

        self.broker = RedisClusterBroker(self.client, connect=connect, prefix=prefix, release=self._release)
        self.presence_manager = RedisPresenceManager(self.client, prefix=prefix, release=self._release)
