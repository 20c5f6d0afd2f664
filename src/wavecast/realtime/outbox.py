"""The queue of a client that doesn't read as fast as messages arrive, and its policies."""

from __future__ import annotations

import collections

from ..protocol.prepared import PreparedMessage
from .config import SlowConsumerPolicy

__all__ = ["Outbox"]


# The key of entries that aren't conflated; ``None`` is a valid conflation key.
_NO_KEY = object()


class _Entry:
    __slots__ = ("droppable", "key", "message")

    def __init__(self, message: PreparedMessage, key: object, droppable: bool) -> None:
        self.message = message
        self.key = key
        self.droppable = droppable


class Outbox:
    """Messages waiting for a slow client, at most ``max_size`` bytes (``None``: no limit).

    Replies are never dropped. Publications follow their channel's policy when the outbox
    is full: ``disconnect`` reports the overflow (the caller disconnects the client with
    3008), ``drop_oldest`` drops the oldest publications, and ``conflate`` keeps only the
    latest publication of each key, in the place of the first one still queued.
    """

    __slots__ = ("_entries", "_keys", "_limit", "dropped", "max_size", "replaced", "size")

    def __init__(self, max_size: int | None) -> None:
        self.max_size = max_size
        self._limit: float = float("inf") if max_size is None else max_size
        self.size = 0
        #: Publications dropped or replaced so far.
        self.dropped = 0
        #: Of those, the publications that a newer one of the same key replaced (``conflate``).
        self.replaced = 0
        # Created by the first message queued and dropped once empty again: most clients
        # read as fast as they are written to, and a deque costs more than the rest of this.
        self._entries: collections.deque[_Entry] | None = None
        self._keys: dict[object, _Entry] | None = None

    def __len__(self) -> int:
        return 0 if self._entries is None else len(self._entries)

    def push(self, message: PreparedMessage, *, policy: SlowConsumerPolicy | None = None, key: object = None) -> bool:
        """Queue a message; ``policy`` is ``None`` for a reply. Return ``False`` on overflow."""
        if policy == "conflate":
            keys = self._keys
            if keys is None:
                keys = self._keys = {}
            entry = keys.get(key)
            if entry is not None:
                self.size += len(message) - len(entry.message)
                entry.message = message
                self.dropped += 1
                self.replaced += 1
                return self.size <= self._limit or self._make_room()
            entry = _Entry(message, key, True)
            keys[key] = entry
        else:
            entry = _Entry(message, _NO_KEY, policy is not None)
        entries = self._entries
        if entries is None:
            entries = self._entries = collections.deque()
        entries.append(entry)
        self.size += len(message)
        if self.size <= self._limit:
            return True
        if policy == "disconnect":
            return False
        return self._make_room()

    def _make_room(self) -> bool:
        """Drop the oldest publications until the outbox fits; ``False`` if replies alone overflow it."""
        kept: collections.deque[_Entry] = collections.deque()
        entries = self._entries
        assert entries is not None  # a message was just queued
        while entries and self.size > self._limit:
            entry = entries.popleft()
            if entry.droppable:
                self.size -= len(entry.message)
                self.dropped += 1
                self._forget_key(entry)
            else:
                kept.append(entry)
        kept.extend(entries)
        self._entries = kept
        return self.size <= self._limit

    def pop(self) -> PreparedMessage | None:
        """Take the oldest message, or ``None`` when empty."""
        entries = self._entries
        if not entries:
            return None
        entry = entries.popleft()
        self.size -= len(entry.message)
        self._forget_key(entry)
        if not entries:
            self._entries = self._keys = None
        return entry.message

    def _forget_key(self, entry: _Entry) -> None:
        keys = self._keys
        if entry.key is not _NO_KEY and keys is not None and keys.get(entry.key) is entry:
            del keys[entry.key]

    def clear(self) -> None:
        self._entries = self._keys = None
        self.size = 0
