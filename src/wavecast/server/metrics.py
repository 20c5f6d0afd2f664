"""Prometheus metrics of a node, read from its counters when ``/metrics`` is scraped."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from ..realtime.node import LATENCY_BUCKETS, Node
from .addresses import AddressLimits

__all__ = ["CONTENT_TYPE", "AddressCollector", "LoopMonitor", "NodeCollector", "metrics_registry", "render_metrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


#: How often :class:`LoopMonitor` sets its timer, in seconds.
LOOP_LAG_INTERVAL = 0.5


class LoopMonitor(Collector):
    """The event loop's health: its tasks, and how late a timer set every ``interval`` seconds fires.

    A loop blocked by a long callback, or too busy to keep up, runs its timers late; that
    delay is the lag every client of the node feels. The timer is a plain callback rather
    than a task, so that measuring adds nothing to the tasks it counts.
    """

    def __init__(self, interval: float = LOOP_LAG_INTERVAL) -> None:
        self.interval = interval
        #: How late the last timer fired, in seconds.
        self.lag = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Start measuring on the running loop."""
        self._loop = asyncio.get_running_loop()
        self._schedule()

    def stop(self) -> None:
        """Stop measuring; safe to call when not started, or twice."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        assert self._loop is not None
        due = self._loop.time() + self.interval
        self._timer = self._loop.call_at(due, self._fire, due)

    def _fire(self, due: float) -> None:
        assert self._loop is not None
        self.lag = max(0.0, self._loop.time() - due)
        self._schedule()

    def collect(self) -> Iterator[Metric]:
        if self._loop is None:
            return
        yield GaugeMetricFamily(
            "wavecast_asyncio_tasks",
            "Asyncio tasks not yet done in the node's event loop.",
            value=len(asyncio.all_tasks(self._loop)),
        )
        yield GaugeMetricFamily(
            "wavecast_event_loop_lag_seconds",
            f"How late the event loop ran the last of a timer set every {self.interval:g} s.",
            value=self.lag,
        )


class NodeCollector(Collector):
    """Turns a node's plain counters into Prometheus metrics at scrape time."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        stats = node.stats
        hub = node.hub
        yield GaugeMetricFamily("wavecast_connections", "Client connections on this node.", value=hub.num_sessions)
        yield GaugeMetricFamily("wavecast_users", "Distinct users connected to this node.", value=hub.num_users)
        yield GaugeMetricFamily(
            "wavecast_subscriptions", "Channel subscriptions on this node.", value=hub.num_subscriptions
        )
        yield GaugeMetricFamily(
            "wavecast_channels", "Channels with subscribers on this node.", value=len(hub.channels())
        )
        yield CounterMetricFamily(
            "wavecast_publications", "Publications made through this node.", value=stats.publications
        )
        yield CounterMetricFamily(
            "wavecast_messages_received", "Messages received from clients.", value=stats.messages_in
        )
        yield CounterMetricFamily("wavecast_bytes_received", "Bytes received from clients.", value=stats.bytes_in)
        yield CounterMetricFamily("wavecast_messages_sent", "Messages sent to clients.", value=stats.messages_out)
        yield CounterMetricFamily(
            "wavecast_bytes_sent", "Bytes sent to clients, before framing.", value=stats.bytes_out
        )
        commands = CounterMetricFamily("wavecast_commands", "Client commands by method.", labels=["method"])
        for method, count in sorted(stats.commands.items()):
            commands.add_metric([method], count)
        yield commands
        errors = CounterMetricFamily("wavecast_command_errors", "Error replies by code.", labels=["code"])
        for code, count in sorted(stats.errors.items()):
            errors.add_metric([str(code)], count)
        yield errors
        disconnects = CounterMetricFamily("wavecast_disconnects", "Client disconnects by code.", labels=["code"])
        for code, count in sorted(stats.disconnects.items()):
            disconnects.add_metric([str(code)], count)
        yield disconnects
        slow = CounterMetricFamily(
            "wavecast_slow_consumer_actions", "Slow-consumer policy actions by kind.", labels=["action"]
        )
        for action, count in sorted(stats.slow_consumer_actions.items()):
            slow.add_metric([action], count)
        yield slow
        emulation = CounterMetricFamily(
            "wavecast_emulation_requests",
            "Emulation requests (POST /emulation) by outcome; forwarded_* for a session of another node.",
            labels=["outcome"],
        )
        for outcome, count in sorted(stats.emulation.items()):
            emulation.add_metric([outcome], count)
        yield emulation
        fetches = CounterMetricFamily(
            "wavecast_jwks_fetches",
            "Fetches of the token keys of a JWKS endpoint by outcome: ok, or failed (the cached keys stay).",
            labels=["endpoint", "outcome"],
        )
        keys = GaugeMetricFamily("wavecast_jwks_keys", "Token keys cached from a JWKS endpoint.", labels=["endpoint"])
        for jwks in node.jwks.values():
            fetches.add_metric([jwks.name, "ok"], jwks.successes)
            fetches.add_metric([jwks.name, "failed"], jwks.failures)
            keys.add_metric([jwks.name], len(jwks.keys))
        yield fetches
        yield keys
        refused = CounterMetricFamily(
            "wavecast_admission_refused",
            "Clients refused by the node's admission rates, by kind: connection (503 at the upgrade) "
            "or connect (error 111); each retries after its backoff.",
            labels=["kind"],
        )
        for kind in ("connection", "connect"):
            refused.add_metric([kind], node.admission.refused[kind])
        yield refused
        buckets: list[tuple[str, float]] = []
        cumulative = 0
        for bound, count in zip(LATENCY_BUCKETS, stats.latency_counts, strict=False):
            cumulative += count
            buckets.append((repr(bound), cumulative))
        cumulative += stats.latency_counts[-1]
        buckets.append(("+Inf", cumulative))
        yield HistogramMetricFamily(
            "wavecast_publish_to_write_seconds",
            "Time from a publication to its writing to local subscribers.",
            buckets=buckets,
            sum_value=stats.latency_sum,
        )


class AddressCollector(Collector):
    """The per-address limits' refusals and the addresses they track."""

    def __init__(self, limits: AddressLimits) -> None:
        self.limits = limits

    def collect(self) -> Iterator[Metric]:
        refused = CounterMetricFamily(
            "wavecast_address_refusals",
            "Requests refused with 429 by a per-address limit: connections, handshakes (new "
            "connections per second) or api (server API requests per second).",
            labels=["limit"],
        )
        for limit, count in self.limits.refused.items():
            refused.add_metric([limit], count)
        yield refused
        yield GaugeMetricFamily(
            "wavecast_addresses_connected",
            "Client addresses (IPv6: prefixes) with open connections to this node.",
            value=len(self.limits.connections),
        )


def metrics_registry(node: Node, loop_monitor: LoopMonitor | None = None) -> CollectorRegistry:
    """A registry with the node's metrics, its event loop's once ``loop_monitor`` is started,
    and the process's (CPU, memory, file descriptors)."""
    registry = CollectorRegistry()
    registry.register(NodeCollector(node))
    if loop_monitor is not None:
        registry.register(loop_monitor)
    registry.register(ProcessCollector(registry=None))
    return registry


def render_metrics(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format of every metric in ``registry``."""
    return generate_latest(registry)
