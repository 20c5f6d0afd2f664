"""Engines: where publications, history and presence live. ``memory`` for one process;
``redis`` for many nodes (imported lazily, it needs redis-py)."""

from __future__ import annotations

from .base import (
    Broker,
    BrokerEventHandler,
    ClientInfo,
    HistoryResult,
    PresenceManager,
    PresenceStats,
    Publication,
    StreamPosition,
)

__all__ = [
    "Broker",
    "BrokerEventHandler",
    "ClientInfo",
    "HistoryResult",
    "PresenceManager",
    "PresenceStats",
    "Publication",
    "StreamPosition",
]
