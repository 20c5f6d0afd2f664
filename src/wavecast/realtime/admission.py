"""Node-wide admission of new clients, so that a reconnect storm can't stall the event loop.

A node restart or a network blip sends every client back at once. Two token buckets, shared
by all clients of a node, bound the work the storm can ask for:

- new connections per second, checked at the WebSocket upgrade, before any handshake work:
  past them the server answers ``503 Service Unavailable`` with ``Retry-After``;
- ``connect`` commands per second, checked before the token is verified (its costliest
  step): past them the command gets error 111 "too many requests", which is temporary.

Both answers make centrifuge-js and centrifuge-python reconnect after their backoff with
jitter, never give up (docs/topics/limits.md cites where each SDK decides). While admission
refuses, :meth:`Admission.overloaded` is true and ``/ready`` answers 503, so that a load
balancer sends the storm to the other nodes.

Pure: the caller passes the time.
"""

from __future__ import annotations

import collections
import math
from typing import TYPE_CHECKING

from .ratelimit import TokenBucket

if TYPE_CHECKING:
    from .config import NodeConfig

__all__ = ["OVERLOAD_WINDOW", "Admission"]

#: Seconds a node stays overloaded after its last refusal: long enough for a load balancer's
#: health check to see it, short enough to take clients again as soon as the storm passes.
OVERLOAD_WINDOW = 1.0


class Admission:
    """The admission rates of one node.

    Args:
        connection_rate: new connections admitted per second; ``None`` for no limit.
        connection_burst: new connections admitted at once.
        connect_rate: ``connect`` commands admitted per second; ``None`` for no limit.
        connect_burst: ``connect`` commands admitted at once.
        now: the current time, in seconds (monotonic).

    Attributes:
        refused: refusals by kind, ``connection`` or ``connect``.
    """

    def __init__(
        self,
        *,
        connection_rate: float | None,
        connection_burst: int,
        connect_rate: float | None,
        connect_burst: int,
        now: float,
    ) -> None:
        self._connections = TokenBucket(connection_rate, connection_burst, now)
        self._connects = TokenBucket(connect_rate, connect_burst, now)
        self.refused: collections.Counter[str] = collections.Counter()
        self._refused_at = -math.inf

    @classmethod
    def from_config(cls, config: NodeConfig, now: float) -> Admission:
        """The admission of a node configured by ``config``'s ``admission_*`` options."""
        return cls(
            connection_rate=config.admission_connection_rate,
            connection_burst=config.admission_connection_burst,
            connect_rate=config.admission_connect_rate,
            connect_burst=config.admission_connect_burst,
            now=now,
        )

    def admit_connection(self, now: float) -> bool:
        """Take a new connection's token; return whether the connection may go on."""
        return self._admit(self._connections, "connection", now)

    def admit_connect(self, now: float) -> bool:
        """Take a ``connect`` command's token; return whether the command may go on."""
        return self._admit(self._connects, "connect", now)

    def overloaded(self, now: float) -> bool:
        """Tell whether a client was refused in the last :data:`OVERLOAD_WINDOW` seconds."""
        return now - self._refused_at < OVERLOAD_WINDOW

    def _admit(self, bucket: TokenBucket, kind: str, now: float) -> bool:
        if bucket.take(now):
            return True
        self.refused[kind] += 1
        self._refused_at = now
        return False
