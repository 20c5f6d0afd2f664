"""The engine interfaces: a Broker moves publications between nodes and keeps history;
a PresenceManager knows who is in a channel.

They are separate so that, say, Redis pub/sub can be combined with in-memory presence.
Engines report back to the node through a :class:`BrokerEventHandler`. Every engine passes
the same contract suite, ``tests/engines/contract/``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol

__all__ = [
    "IDEMPOTENT_RESULT_TTL",
    "Broker",
    "BrokerEventHandler",
    "ClientInfo",
    "HistoryResult",
    "PresenceManager",
    "PresenceStats",
    "Publication",
    "StreamPosition",
]


#: Seconds a publication's result is kept under its idempotency key: Centrifugo's 5 minutes.
IDEMPOTENT_RESULT_TTL = 300.0


@dataclasses.dataclass(frozen=True, slots=True)
class ClientInfo:
    """Who a connection is: its client id, user id, and the info attached to the connection
    (from the token or the connect hook) and to the subscription.

    ``conn_info`` and ``chan_info`` are opaque bytes (JSON text for JSON clients).
    """

    client: str
    user: str
    conn_info: bytes | None = None
    chan_info: bytes | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class StreamPosition:
    """A position in a channel's stream.

    ``offset`` counts publications since the stream began. ``epoch`` names one life of the
    stream: when a stream is lost (expired, evicted, its engine restarted) it starts again
    with a new epoch, so a client that remembers an offset of the old one learns that
    recovery is impossible instead of silently missing publications.
    """

    offset: int
    epoch: str


@dataclasses.dataclass(frozen=True, slots=True)
class Publication:
    """A message published to a channel.

    Attributes:
        data: the payload, opaque bytes: JSON text, or anything when ``binary``.
        offset: its offset in the channel's stream; 0 when the channel keeps no history.
        info: the publisher, when a client published it.
        tags: optional string tags.
        time: publication time in Unix milliseconds, 0 when not recorded.
        binary: the data isn't JSON: protobuf clients receive it, JSON clients can't. Set by
            whoever makes the publication, so that fan-out never has to parse data to know.
        delta: the publisher allows it to reach delta subscribers as a delta against the
            previous publication they received (Centrifugo's publish ``delta``).
    """

    data: bytes
    offset: int = 0
    info: ClientInfo | None = None
    tags: Mapping[str, str] | None = None
    time: int = 0
    binary: bool = False
    delta: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class HistoryResult:
    """Publications from a stream, and the stream's current position."""

    publications: list[Publication]
    position: StreamPosition


@dataclasses.dataclass(frozen=True, slots=True)
class PresenceStats:
    """How many connections and distinct users are present in a channel."""

    num_clients: int
    num_users: int


class BrokerEventHandler(Protocol):
    """What a broker calls when something arrives for a channel this node subscribed to, or
    on the control channel.

    The calls are synchronous and must not block: they fan out to local connections.

    Attributes:
        uid: the node's unique id: control messages sent to it (see
            :meth:`Broker.publish_control`) reach this handler and no other.
    """

    uid: str

    def on_publication(self, channel: str, publication: Publication, position: StreamPosition | None) -> None:
        """A publication arrived; ``position`` is set when the channel keeps history."""

    def on_join(self, channel: str, info: ClientInfo) -> None:
        """A client joined the channel, on this node or another."""

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        """A client left the channel, on this node or another."""

    def on_continuity_lost(self, channels: list[str]) -> None:
        """Events of these channels may have been lost (the broker reconnected to its server).

        The node makes positioned subscribers recover from history.
        """

    def on_control(self, message: bytes) -> None:
        """A control message arrived: one that a node sent to every node, or to this one."""


class Broker(Protocol):
    """Moves publications to every node subscribed to a channel, and keeps channel history."""

    async def start(self, handler: BrokerEventHandler) -> None:
        """Start delivering events to ``handler``; called once before anything else."""

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
        """Publish to every subscribed node, in one step with appending to history.

        With ``history_size`` and ``history_ttl`` above 0, the publication is appended to the
        channel's stream, keeping at most ``history_size`` publications for ``history_ttl``
        seconds after the last one; it gets the next offset, and the new position is
        returned. Without history, ``None`` is returned and the publication's offset is 0.

        With an ``idempotency_key``, a publication to the same channel with the same key in
        the ``idempotent_ttl`` seconds after the first is not published: the first one's
        result is returned and nothing is delivered, as Centrifugo's ``idempotency_key``
        does. The check and the publication are one step, on every node of the engine.

        Raises:
            EngineError: the publication could not be accepted; it was not delivered.
        """
        ...

    async def publish_control(self, message: bytes, *, node: str | None = None) -> None:
        """Send a control message to every node of the engine, this one included, or to the
        node whose uid is ``node``; what nodes tell each other (their info, surveys).

        Raises:
            EngineError: the message could not be sent.
        """

    async def publish_join(self, channel: str, info: ClientInfo) -> None:
        """Tell every subscribed node that a client joined."""

    async def publish_leave(self, channel: str, info: ClientInfo) -> None:
        """Tell every subscribed node that a client left."""

    async def subscribe(self, channel: str) -> None:
        """Start receiving the channel's events on this node.

        When it returns, every event published afterwards reaches this node, so history read
        afterwards and live delivery leave no gap between them.

        Raises:
            EngineError: the subscription could not be made; the channel isn't subscribed.
        """

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving the channel's events on this node."""

    async def history(
        self, channel: str, *, since: StreamPosition | None = None, limit: int | None = None, reverse: bool = False
    ) -> HistoryResult:
        """Return publications of the channel's stream and its current position.

        Args:
            since: return only publications after this position; if its epoch isn't the
                stream's, the stream's position is returned with no publication.
            limit: at most this many publications; 0 returns only the position, ``None``
                every publication kept.
            reverse: newest first.
        """
        ...

    async def remove_history(self, channel: str) -> None:
        """Forget the channel's publications; its offset and epoch stay."""

    async def close(self) -> None:
        """Release resources; the broker is not used afterwards."""


class PresenceManager(Protocol):
    """Who is present in each channel."""

    async def start(self) -> None:
        """Start background work, if any; called once before anything else."""

    async def add_presence(self, channel: str, client: str, info: ClientInfo, *, ttl: float) -> None:
        """Add or refresh a client's presence, which expires ``ttl`` seconds later unless refreshed."""

    async def remove_presence(self, channel: str, client: str, user: str) -> None:
        """Remove a client's presence."""

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        """Return the clients present, by client id."""
        ...

    async def presence_stats(self, channel: str) -> PresenceStats:
        """Return how many clients and users are present."""
        ...

    async def close(self) -> None:
        """Release resources."""
