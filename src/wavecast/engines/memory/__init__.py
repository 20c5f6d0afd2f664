"""The in-memory engine: one process, no broker."""

from __future__ import annotations

from .broker import MemoryBroker
from .presence import MemoryPresenceManager

__all__ = ["MemoryBroker", "MemoryPresenceManager"]
