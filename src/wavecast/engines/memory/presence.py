"""Presence for one process, in memory."""

from __future__ import annotations

import time
from collections.abc import Callable

from ...periodic import Periodic
from ..base import ClientInfo, PresenceStats

__all__ = ["MemoryPresenceManager"]


class MemoryPresenceManager:
    """Keeps each channel's present clients in memory, each until its TTL passes.

    Args:
        sweep_interval: seconds between sweeps of expired entries.
        clock: a monotonic clock in seconds.
    """

    def __init__(self, *, sweep_interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.sweep_interval = sweep_interval
        self.clock = clock
        self._channels: dict[str, dict[str, tuple[ClientInfo, float]]] = {}
        self._sweeper = Periodic("wavecast-presence-sweep", sweep_interval, self.sweep)

    async def start(self) -> None:
        self._sweeper.start()

    async def close(self) -> None:
        await self._sweeper.stop()

    async def add_presence(self, channel: str, client: str, info: ClientInfo, *, ttl: float) -> None:
        self._channels.setdefault(channel, {})[client] = (info, self.clock() + ttl)

    async def remove_presence(self, channel: str, client: str, user: str) -> None:
        clients = self._channels.get(channel)
        if clients is not None:
            clients.pop(client, None)
            if not clients:
                del self._channels[channel]

    def _live(self, channel: str) -> dict[str, ClientInfo]:
        now = self.clock()
        clients = self._channels.get(channel, {})
        return {client: info for client, (info, expires) in clients.items() if expires > now}

    async def presence(self, channel: str) -> dict[str, ClientInfo]:
        return self._live(channel)

    async def presence_stats(self, channel: str) -> PresenceStats:
        live = self._live(channel)
        return PresenceStats(num_clients=len(live), num_users=len({info.user for info in live.values()}))

    def sweep(self) -> None:
        """Forget expired entries."""
        now = self.clock()
        for channel, clients in list(self._channels.items()):
            for client, (_, expires) in list(clients.items()):
                if expires <= now:
                    del clients[client]
            if not clients:
                del self._channels[channel]
