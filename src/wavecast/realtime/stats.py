"""What a node counts, for the metrics endpoint to read when it is scraped."""

from __future__ import annotations

import bisect
import collections
import dataclasses

__all__ = ["LATENCY_BUCKETS", "NodeStats"]

#: Upper bounds, in seconds, of the publish-to-write latency histogram's buckets.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclasses.dataclass
class NodeStats:
    """Counters of a node; plain integers, so that counting costs nothing on the hot paths.

    Attributes:
        publications: publications this node published (client commands and the server API).
        deliveries: publications written or queued to a subscriber of this node.
        messages_in, bytes_in: WebSocket messages from clients, and their bytes.
        messages_out, bytes_out: publications sent to clients, and their bytes.
        commands: commands received, by method.
        errors: error replies, by code.
        slow_consumer_actions: what slow-consumer policies did: ``disconnect``,
            ``drop_oldest``, ``conflate``.
        disconnects: sessions ended, by disconnect code.
        emulation: emulation requests (``POST /emulation``) this node took, by outcome, those
            for a session of another node under ``forwarded_<outcome>``.
        latency_counts, latency_sum: the publish-to-write latency histogram (see
            :data:`LATENCY_BUCKETS`).
    """

    publications: int = 0
    deliveries: int = 0
    messages_in: int = 0
    bytes_in: int = 0
    messages_out: int = 0
    bytes_out: int = 0
    commands: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    errors: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    slow_consumer_actions: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    disconnects: collections.Counter[int] = dataclasses.field(default_factory=collections.Counter)
    emulation: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    #: Counts per bucket of LATENCY_BUCKETS, plus one for larger values; and their sum.
    latency_counts: list[int] = dataclasses.field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    latency_sum: float = 0.0

    def observe_latency(self, seconds: float) -> None:
        index = bisect.bisect_left(LATENCY_BUCKETS, seconds)
        self.latency_counts[index] += 1
        self.latency_sum += seconds

    def slow_consumer(self, action: str, count: int = 1) -> None:
        """Count slow-consumer actions: a client disconnected, publications dropped or conflated."""
        self.slow_consumer_actions[action] += count
