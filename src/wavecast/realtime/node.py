"""The Node: one per process. It wires the parts of the real-time layer and starts and stops
them; each part does one thing:

| part | what |
| --- | --- |
| :class:`~.hub.Hub` (``hub``) | the index of local sessions and of each channel's subscribers |
| :class:`~.subscribers.LocalSubscribers` (``subscribers``) | adds and removes subscribers; the broker follows |
| :class:`~.fanout.FanOut` (``fanout``) | the way publications, joins and leaves travel to local subscribers |
| :class:`~.presence.PresenceTracker` (``presence_tracker``) | the presence of local subscribers, refreshed |
| :mod:`~.subscribing` | sets subscriptions up and tears them down |
| :class:`~.hooks.Hooks` | the application's hooks (the node is one) |
| :class:`~.api.ServerAPI` | publish, presence, history, disconnect... (the node is one) |
| :class:`~.cluster.Cluster` (``cluster``) | every live node's info and channels, over the control channel |
| ``broker``, ``presence_manager`` | the engines (:mod:`wavecast.engines`) |
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Coroutine
from types import TracebackType
from typing import Any

from ..codes import DISCONNECT_SHUTDOWN, UNSUBSCRIBE_INSUFFICIENT_STATE, Disconnect
from ..engines.base import Broker, ClientInfo, PresenceManager, Publication, StreamPosition
from . import subscribing
from .admission import Admission
from .api import ServerAPI
from .auth import TokenVerifier
from .cluster import Cluster
from .codec.schema import JoinMsg, LeaveMsg, Push, client_info_msg
from .config import NodeConfig
from .contexts import DisconnectContext
from .emulation import EmulationSessions, deliver_forwarded
from .fanout import FanOut
from .hooks import Hooks
from .hub import Hub
from .jwks import JWKS
from .presence import PresenceTracker
from .session import Session
from .stats import LATENCY_BUCKETS, NodeStats
from .subscribers import LocalSubscribers
from .subscription import UNSUBSCRIBED, Subscription

__all__ = ["LATENCY_BUCKETS", "Node", "NodeStats"]

logger = logging.getLogger("wavecast.realtime")


class Node(Hooks, ServerAPI):
    """A real-time node.

    Args:
        config: channel options, limits and auth; defaults to :class:`NodeConfig()`.
        broker: where publications and history go; in memory by default.
        presence_manager: where presence lives; in memory by default.

    Hooks are attributes: ``on_connecting``, ``on_subscribe``, ``on_publish``, ``on_rpc``
    (for methods without their own handler), ``on_message`` and ``on_disconnect``; the
    decorators of the same names set them, and ``@node.rpc("method")`` registers an RPC
    handler.
    """

    def __init__(
        self,
        config: NodeConfig | None = None,
        *,
        broker: Broker | None = None,
        presence_manager: PresenceManager | None = None,
    ) -> None:
        from ..engines.memory import MemoryBroker, MemoryPresenceManager

        super().__init__()
        self.config = config if config is not None else NodeConfig()
        self.broker: Broker = broker if broker is not None else MemoryBroker()
        self.presence_manager: PresenceManager = (
            presence_manager if presence_manager is not None else MemoryPresenceManager()
        )
        self.hub = Hub()
        #: Sessions on HTTP-streaming and SSE, by the id their emulation requests name.
        self.emulation = EmulationSessions()
        self.stats = NodeStats()
        #: The node-wide rates of new connections and connect commands (reconnect storms).
        self.admission = Admission.from_config(self.config, time.monotonic())
        #: The keys of the JWKS endpoints, by URL: one cache for an endpoint both kinds of token use.
        self.jwks: dict[str, JWKS] = {}
        #: Verifies connection tokens; :attr:`subscription_tokens` verifies subscription tokens,
        #: the same one unless ``separate_subscription_token_config``.
        self.tokens = self._token_verifier("token_")
        self.subscription_tokens = (
            self._token_verifier("subscription_token_")
            if self.config.separate_subscription_token_config
            else self.tokens
        )
        self.subscribers = LocalSubscribers(self.hub, self.broker)
        self.presence_tracker = PresenceTracker(self.presence_manager, self.hub, self.config)
        self.fanout = FanOut(self.hub, self.config, self.stats, self._resubscribe)
        self._tasks: set[asyncio.Task[Any]] = set()
        self.started = False
        #: This node's unique id, reported by the info API: a UUID, as Centrifugo's.
        self.uid = str(uuid.uuid4())
        self._started_at = time.monotonic()
        self.cluster = Cluster(
            self.uid,
            self.broker,
            self.node_info,
            self.channels,
            interval=self.config.node_info_interval,
            survey_timeout=self.config.survey_timeout,
            spawn=self._spawn,
            emulate=functools.partial(deliver_forwarded, self),
        )

    def _token_verifier(self, prefix: str) -> TokenVerifier:
        """Build the verifier of the ``token_*`` or the ``subscription_token_*`` options."""
        config = self.config
        endpoint: str = getattr(config, f"{prefix}jwks_public_endpoint")
        static = [
            name for name in ("hmac_secret_key", "rsa_public_key", "ecdsa_public_key") if getattr(config, prefix + name)
        ]
        jwks = None
        if endpoint:
            if static:
                logger.warning(
                    "%s is set: %s not used, every token is verified with the JWKS's keys",
                    f"{prefix}jwks_public_endpoint",
                    ", ".join(prefix + name for name in static),
                )
            jwks = self.jwks.get(endpoint)
            if jwks is None:
                jwks = self.jwks[endpoint] = JWKS(
                    endpoint,
                    refresh_interval=config.token_jwks_refresh_interval,
                    min_refresh_interval=config.token_jwks_min_refresh_interval,
                    timeout=config.token_jwks_timeout,
                    max_response_size=config.token_jwks_max_response_size,
                    max_keys=config.token_jwks_max_keys,
                )
        return TokenVerifier(
            hmac_secret=getattr(config, f"{prefix}hmac_secret_key"),
            rsa_public_key=getattr(config, f"{prefix}rsa_public_key"),
            ecdsa_public_key=getattr(config, f"{prefix}ecdsa_public_key"),
            audience=getattr(config, f"{prefix}audience"),
            issuer=getattr(config, f"{prefix}issuer"),
            jwks=jwks,
        )

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the engines and the presence refresher."""
        if self.started:
            return
        await self.broker.start(self)
        await self.presence_manager.start()
        for jwks in self.jwks.values():
            jwks.start()
        self.presence_tracker.start()
        await self.cluster.start()
        self.started = True

    async def shutdown(self, disconnect: Disconnect = DISCONNECT_SHUTDOWN) -> None:
        """Disconnect every client (they reconnect elsewhere), finish cleanups, stop the engines."""
        for session in self.hub.sessions():
            session.disconnect(disconnect)
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=self.config.shutdown_timeout)
        await self.presence_tracker.stop()
        await self.cluster.stop()
        for jwks in self.jwks.values():
            await jwks.aclose()
        await self.presence_manager.close()
        await self.broker.close()
        self.started = False

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.shutdown()

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        """Run background work that the node waits for at shutdown."""
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("background task failed", exc_info=task.exception())

    # --- the broker's events (BrokerEventHandler): see engines.base ----------------------------

    def on_publication(self, channel: str, publication: Publication, position: StreamPosition | None) -> None:
        self.fanout.publication(channel, publication, position)

    def on_join(self, channel: str, info: ClientInfo) -> None:
        self.fanout.push(channel, Push(channel=channel, join=JoinMsg(info=client_info_msg(info))))

    def on_leave(self, channel: str, info: ClientInfo) -> None:
        self.fanout.push(channel, Push(channel=channel, leave=LeaveMsg(info=client_info_msg(info))))

    def on_continuity_lost(self, channels: list[str]) -> None:
        self.fanout.continuity_lost(channels)

    def on_control(self, message: bytes) -> None:
        self.cluster.on_control(message)

    def _resubscribe(self, session: Session, channel: str) -> None:
        self._spawn(subscribing.unsubscribe(session, channel, unsubscribe=UNSUBSCRIBE_INSUFFICIENT_STATE))

    # --- sessions ------------------------------------------------------------------------------

    def forget_session(self, session: Session, disconnect: Disconnect, was_connected: bool) -> None:
        """A session closed: forget it now, and clean its subscriptions up in the background."""
        self.hub.remove_session(session)
        self.stats.disconnects[disconnect.code] += 1
        subscriptions = list(session.subscriptions.values())
        session.subscriptions.clear()
        for subscription in subscriptions:
            if subscription.state is not UNSUBSCRIBED:
                subscription.end()
        if subscriptions or (was_connected and self.on_disconnect is not None):
            self._spawn(self._cleanup(session, subscriptions, disconnect, was_connected))

    async def _cleanup(
        self, session: Session, subscriptions: list[Subscription], disconnect: Disconnect, was_connected: bool
    ) -> None:
        for subscription in subscriptions:
            try:
                await subscribing.cleanup(session, subscription)
            except Exception as exc:
                logger.warning("cleanup of %s in %s failed: %s", session.client, subscription.channel, exc)
        if was_connected and self.on_disconnect is not None:
            await self.on_disconnect(DisconnectContext(session=session, disconnect=disconnect))
