"""Doubles of the engine tests: a recording event handler, and what drives a started engine."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from wavecast.engines import Broker, ClientInfo, PresenceManager, Publication, StreamPosition

from ..support.timing import wait_until

if TYPE_CHECKING:
    from wavecast.engines.redis import RedisEngine

__all__ = ["Engine", "Event", "RecordingHandler", "StartEngine"]


@dataclasses.dataclass(frozen=True)
class Event:
    """One call a broker made to its handler."""

    kind: str  # "publication", "join", "leave" or "continuity_lost"
    channel: str
    publication: Publication | None = None
    position: StreamPosition | None = None
    info: ClientInfo | None = None


class RecordingHandler:
    """A :class:`~wavecast.engines.BrokerEventHandler` that records every call, in order."""

    def __init__(self, uid: str = "node-1") -> None:
        self.uid = uid
        self.events: list[Event] = []
        #: Control messages received, in order.
        self.control: list[bytes] = []

    def on_publication(self, channel: str, publication: Publication, position: StreamPosition | None) -> None:
        self.events.append(Event("publication", channel, publication=publication, position=position))

    def on_join(self, channel: str, info: ClientInfo) -> None:
        self.events.append(Event("join", channel, info=info))

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        self.events.append(Event("leave", channel, info=info))

    def on_continuity_lost(self, channels: list[str]) -> None:
        for channel in channels:
            self.events.append(Event("continuity_lost", channel))

    def on_control(self, message: bytes) -> None:
        self.control.append(message)

    def of(self, channel: str, kind: str | None = None) -> list[Event]:
        """Return the events of ``channel``, of one kind or all."""
        return [e for e in self.events if e.channel == channel and (kind is None or e.kind == kind)]

    def publications(self, channel: str) -> list[Publication]:
        return [e.publication for e in self.of(channel, "publication") if e.publication is not None]

    async def wait_for(self, channel: str, count: int, kind: str | None = None) -> list[Event]:
        """Wait until ``count`` events of ``channel`` arrived: a remote engine delivers them later."""
        await wait_until(lambda: len(self.of(channel, kind)) >= count, what=f"{count} events in {channel}")
        return self.of(channel, kind)


@dataclasses.dataclass
class Engine:
    """A started broker and presence manager, and what the contract tests need to drive them.

    Attributes:
        name: the engine's name in the registry.
        events: what the broker reported to its handler.
        meta_ttl: seconds a stream's offset and epoch outlive its last publication, as the
            factory configured the broker.
        advance: let ``seconds`` pass, for the engine: a fake clock moves at once, a real
            one is slept through.
    """

    name: str
    broker: Broker
    presence: PresenceManager
    events: RecordingHandler
    meta_ttl: float
    advance: Callable[[float], Awaitable[None]]

    @staticmethod
    def channel(prefix: str = "ch") -> str:
        """Return a channel name that no other test uses, for engines that share a server."""
        return f"{prefix}-{uuid.uuid4().hex[:12]}"


#: ``await start_engine(server, **kwargs)``, the fixture of ``tests/engines/redis/conftest.py``.
StartEngine = Callable[..., Awaitable[tuple["RedisEngine", RecordingHandler]]]
