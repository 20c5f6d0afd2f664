"""The server-side API of a node: what an application (or the HTTP API) does to channels and
clients, as Centrifugo's server API does it.

Every method acts through the node's parts (engines, hub, subscription set-up); the node
itself only wires them (see :mod:`.node`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..codes import DISCONNECT_EXPIRED, DISCONNECT_FORCE_NO_RECONNECT, Disconnect
from ..engines.base import ClientInfo, HistoryResult, PresenceStats, Publication, StreamPosition
from ..exceptions import ConfigError, DisconnectError
from ..version import version
from . import subscribing
from .cluster import Cluster, NodeInfo
from .codec.json import JSONCodec, binary_or_json
from .codec.schema import MessageMsg, Push, raw
from .config import ChannelOptions, NodeConfig
from .hub import Hub
from .stats import NodeStats

if TYPE_CHECKING:
    from ..engines.base import Broker, PresenceManager
    from .session import Session

__all__ = ["ServerAPI"]


class ServerAPI:
    """The server-side API, a part of :class:`~.node.Node`.

    ``publish``, ``broadcast``, ``presence``, ``presence_stats``, ``history``,
    ``history_remove``, ``disconnect``, ``send``, ``subscribe``, ``unsubscribe``,
    ``refresh``, ``channels`` and ``info`` (this node), ``cluster_channels`` and
    ``cluster_info`` (every node). Methods that act on a user's connections act on those of
    this node (or one of them, with ``client``) and return how many.
    """

    config: NodeConfig
    broker: Broker
    presence_manager: PresenceManager
    hub: Hub
    stats: NodeStats
    cluster: Cluster
    uid: str
    _started_at: float

    def channel_options(self, channel: str) -> ChannelOptions:
        """The options of a channel.

        Raises:
            ConfigError: the channel's namespace isn't configured.
        """
        options = self.config.channel_options(channel)
        if options is None:
            raise ConfigError(f"unknown namespace in channel {channel!r}")
        return options

    # --- publications ------------------------------------------------------------------------

    async def publish(
        self,
        channel: str,
        data: Any,
        *,
        tags: dict[str, str] | None = None,
        info: ClientInfo | None = None,
        idempotency_key: str | None = None,
        delta: bool = False,
    ) -> StreamPosition | None:
        """Publish to a channel; ``data`` is bytes, or any value JSON can hold (sent as JSON).

        Bytes that aren't JSON are binary data: protobuf subscribers receive them, JSON
        subscribers are disconnected with 3506, as in Centrifugo. ``tags`` travel with the
        publication (subscribers' tags filters match them); with ``delta``, subscribers that
        negotiated delta compression receive it as a delta against the previous one.

        With an ``idempotency_key``, a repeat to the same channel within
        ``config.idempotent_result_ttl`` seconds returns the first one's result and delivers
        nothing, on every node of the engine.

        Returns the publication's position when the channel keeps history.

        Raises:
            ConfigError: the ``idempotency_key`` is longer than ``config.idempotency_key_max_length``.
        """
        payload, binary = _data(data)
        return await self._publish(channel, payload, binary, tags, info, idempotency_key, delta)

    async def broadcast(
        self,
        channels: Iterable[str],
        data: Any,
        *,
        tags: dict[str, str] | None = None,
        idempotency_key: str | None = None,
        delta: bool = False,
    ) -> list[StreamPosition | None]:
        """Publish the same data to several channels; an ``idempotency_key`` holds per channel."""
        payload, binary = _data(data)
        return [
            await self._publish(channel, payload, binary, tags, None, idempotency_key, delta) for channel in channels
        ]

    async def _publish(
        self,
        channel: str,
        data: bytes,
        binary: bool,
        tags: dict[str, str] | None,
        info: ClientInfo | None,
        idempotency_key: str | None = None,
        delta: bool = False,
    ) -> StreamPosition | None:
        publication = Publication(
            data=data, tags=tags, info=info, time=int(time.time() * 1000), binary=binary, delta=delta
        )
        return await self.publish_publication(
            channel, publication, self.channel_options(channel), idempotency_key=idempotency_key
        )

    def check_idempotency_key(self, key: str | None) -> None:
        """Refuse an idempotency key longer than ``config.idempotency_key_max_length``.

        Raises:
            ConfigError: it is; the message gives both lengths.
        """
        limit = self.config.idempotency_key_max_length
        if key and limit is not None and len(key) > limit:
            raise ConfigError(f"idempotency_key has {len(key)} characters, expected no more than {limit}")

    async def publish_publication(
        self, channel: str, publication: Publication, options: ChannelOptions, *, idempotency_key: str | None = None
    ) -> StreamPosition | None:
        """Publish a publication made by the caller, with a channel's history options.

        Raises:
            ConfigError: the ``idempotency_key`` is too long (see :meth:`check_idempotency_key`).
            EngineError: the broker didn't take it; nothing was delivered.
        """
        self.check_idempotency_key(idempotency_key)
        self.stats.publications += 1
        return await self.broker.publish(
            channel,
            publication,
            history_size=options.history_size,
            history_ttl=options.history_ttl,
            idempotency_key=idempotency_key or None,
            idempotent_ttl=self.config.idempotent_result_ttl,
        )

    # --- presence and history ----------------------------------------------------------------

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """The clients present in a channel, by client id, on every node.

        Raises:
            ConfigError: the channel's namespace is unknown or keeps no presence.
        """
        if not self.channel_options(channel).presence:
            raise ConfigError(f"presence is off for {channel!r}")
        return await self.presence_manager.presence(channel)

    async def presence_stats(self, channel: str) -> PresenceStats:
        """How many clients and distinct users are present in a channel, on every node.

        Raises:
            ConfigError: the channel's namespace is unknown or keeps no presence.
        """
        if not self.channel_options(channel).presence:
            raise ConfigError(f"presence is off for {channel!r}")
        return await self.presence_manager.presence_stats(channel)

    async def history(
        self, channel: str, *, limit: int | None = None, since: StreamPosition | None = None, reverse: bool = False
    ) -> HistoryResult:
        """Publications of a channel's stream and its position, as the history command answers.

        ``limit`` 0 gives the position only, ``None`` every publication kept; ``since``
        continues after a position of the same epoch; ``reverse`` gives the newest first.

        Raises:
            ConfigError: the channel's namespace is unknown or keeps no history.
        """
        if not self.channel_options(channel).history:
            raise ConfigError(f"history is off for {channel!r}")
        return await self.broker.history(channel, limit=limit, since=since, reverse=reverse)

    async def history_remove(self, channel: str) -> None:
        """Forget a channel's publications; its offset and epoch stay."""
        await self.broker.remove_history(channel)

    # --- connections -------------------------------------------------------------------------

    def _sessions(self, user: str, client: str | None) -> list[Session]:
        if client:
            session = self.hub.session(client)
            return [session] if session is not None and session.user == user else []
        return self.hub.user_sessions(user)

    def _live_sessions(self, user: str, client: str | None) -> list[Session]:
        """A user's sessions past their connect command and not closed."""
        return [s for s in self._sessions(user, client) if not (s.connecting or s.closed)]

    async def disconnect(
        self, user: str, disconnect: Disconnect = DISCONNECT_FORCE_NO_RECONNECT, *, client: str | None = None
    ) -> int:
        """Disconnect a user's connections (or one of them)."""
        sessions = self._sessions(user, client)
        for session in sessions:
            session.disconnect(disconnect)
        return len(sessions)

    async def send(self, user: str, data: Any, *, client: str | None = None) -> int:
        """Send an asynchronous message to a user's connections (or one of them).

        Each receives a ``message`` push, as centrifuge's ``Client.Send`` sends it: centrifuge-js
        emits ``message`` on the client. ``data`` is bytes, or any value JSON can hold (sent as
        JSON); bytes that aren't JSON disconnect a JSON client with 3506, as publications do.
        """
        count = 0
        for session in self._live_sessions(user, client):
            try:
                payload = session.outgoing_data(data)
            except DisconnectError as exc:
                session.disconnect(exc.disconnect)
                continue
            session.push(Push(message=MessageMsg(data=raw(payload))))
            count += 1
        return count

    async def unsubscribe(self, user: str, channel: str, *, client: str | None = None) -> int:
        """Unsubscribe a user's connections from a channel; they receive an unsubscribe push."""
        count = 0
        for session in self._sessions(user, client):
            if await subscribing.unsubscribe(session, channel):
                count += 1
        return count

    async def subscribe(self, user: str, channel: str, *, client: str | None = None) -> int:
        """Subscribe a user's connections to a channel from the server; they receive a subscribe push."""
        self.channel_options(channel)  # an unknown namespace raises, as in the rest of the API
        count = 0
        for session in self._live_sessions(user, client):
            if channel in session.subscriptions:
                continue
            await subscribing.subscribe_from_server(session, channel)
            count += 1
        return count

    async def refresh(self, user: str, *, client: str | None = None, expired: bool = False, expire_at: int = 0) -> int:
        """Mark a user's connections expired (disconnect 3005), or set when they expire."""
        sessions = self._sessions(user, client)
        for session in sessions:
            if expired:
                session.disconnect(DISCONNECT_EXPIRED)
            else:
                session.set_expiry(expire_at)
        return len(sessions)

    # --- this node and the others ---------------------------------------------------------

    @property
    def uptime(self) -> float:
        """Seconds since this node was created."""
        return time.monotonic() - self._started_at

    def channels(self) -> dict[str, int]:
        """Channels with subscribers on this node, and how many."""
        return self.hub.channels()

    def info(self) -> dict[str, Any]:
        """This node's name and counts."""
        return {
            "name": self.config.name,
            "num_clients": self.hub.num_sessions,
            "num_users": self.hub.num_users,
            "num_channels": len(self.hub.channels()),
            "num_subscriptions": self.hub.num_subscriptions,
        }

    def node_info(self) -> NodeInfo:
        """This node's info as the other nodes and the ``info`` API see it."""
        return NodeInfo(
            uid=self.uid,
            name=self.config.name,
            version=version,
            num_clients=self.hub.num_sessions,
            num_users=self.hub.num_users,
            num_channels=len(self.hub.channels()),
            num_subs=self.hub.num_subscriptions,
            uptime=int(self.uptime),
        )

    def cluster_info(self) -> list[NodeInfo]:
        """Every live node of the engine, this one first (see :mod:`.cluster`)."""
        return self.cluster.nodes()

    async def cluster_channels(self) -> dict[str, int]:
        """Channels with subscribers on any live node of the engine, and how many on all."""
        return await self.cluster.channels()


def _data(data: Any) -> tuple[bytes, bool]:
    """Publication data and whether it is binary: bytes as :func:`binary_or_json` says, values as JSON."""
    if isinstance(data, bytes | bytearray | memoryview):
        return binary_or_json(bytes(data))
    return JSONCodec.encode_data(data), False
