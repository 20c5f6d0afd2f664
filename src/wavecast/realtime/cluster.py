"""The cluster-wide view of a node: every live node's info, and every node's channels,
gathered over the broker's control channel as Centrifugo does.

Each node sends its info (name, counts, uptime) to every node every ``node_info_interval``
seconds; the others keep it until ``2 * interval + 1`` seconds pass without a new one
(Centrifugo's ``nodeInfoMaxDelay``), so a node that dies drops out of ``info`` within that
time, and one that shuts down says so at once. ``channels`` is a survey: a request to every
node, which each answers to the sender alone, gathered until every live node has answered
or ``survey_timeout`` passed.

An emulation request (``POST /emulation``) that reached a node other than the one whose
stream holds the session goes to that node alone, as Centrifugo's ``centrifuge_emulation``
survey does: :meth:`Cluster.forward` sends it and waits, up to ``survey_timeout``, for the
owner's outcome; the owner runs it with the ``emulate`` callback, in the order the requests
arrived. At most :data:`MAX_FORWARDS` forwards wait on a node, and as many run on their
owner; past that a request is answered ``"busy"`` at once.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import msgspec

from ..engines.base import Broker
from ..exceptions import EngineError
from ..periodic import Periodic

__all__ = ["MAX_FORWARDS", "Cluster", "Emulate", "NodeInfo"]

logger = logging.getLogger("wavecast.realtime")


class NodeInfo(msgspec.Struct, tag="info", kw_only=True):
    """What a node tells the others about itself: the fields of Centrifugo's ``info`` result."""

    uid: str
    name: str
    version: str
    num_clients: int
    num_users: int
    num_channels: int
    num_subs: int
    uptime: int


class _Leave(msgspec.Struct, tag="leave"):
    uid: str


class _Survey(msgspec.Struct, tag="survey"):
    id: str
    sender: str


class _SurveyReply(msgspec.Struct, tag="reply"):
    id: str
    sender: str
    channels: dict[str, int]


class _Forward(msgspec.Struct, tag="forward"):
    """An emulation request for a session of the node it is sent to: the commands as text
    (JSON) or bytes (Protobuf, base64 in the control message)."""

    id: str
    sender: str
    session: str
    text: str | None = None
    raw: bytes | None = None


class _Forwarded(msgspec.Struct, tag="forwarded"):
    id: str
    outcome: str


_Control = NodeInfo | _Leave | _Survey | _SurveyReply | _Forward | _Forwarded

#: Emulation requests that may wait for their owner on one node, and run for other nodes on
#: one node, at once: a flood of POSTs is answered ``"busy"`` past this, not queued.
MAX_FORWARDS = 10_000

#: Runs an emulation request's commands on a session of this node and says what became of
#: them: ``"delivered"``, ``"no_session"`` or ``"bad_request"``.
Emulate = Callable[[str, str | bytes], Awaitable[str]]
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_Control).decode


class _Pending:
    """A survey waiting for the nodes it asked."""

    def __init__(self, waiting: set[str]) -> None:
        self.waiting = waiting
        self.channels: collections.Counter[str] = collections.Counter()
        self.done = asyncio.Event()

    def add(self, sender: str, channels: dict[str, int]) -> None:
        if sender in self.waiting:
            self.waiting.discard(sender)
            self.channels.update(channels)
            if not self.waiting:
                self.done.set()


class Cluster:
    """Every live node of the engine as this node sees it, a part of :class:`~.node.Node`.

    Args:
        uid: this node's unique id.
        broker: sends and receives the control messages (the node hands them to
            :meth:`on_control`).
        local_info: this node's info, now.
        local_channels: this node's channels with subscribers, and how many.
        interval: seconds between two infos of this node.
        survey_timeout: seconds a survey waits for the nodes that haven't answered.
        spawn: runs background work that the node waits for at shutdown.
        clock: a monotonic clock in seconds.
        emulate: runs the emulation requests that other nodes forward to this one.
    """

    def __init__(
        self,
        uid: str,
        broker: Broker,
        local_info: Callable[[], NodeInfo],
        local_channels: Callable[[], dict[str, int]],
        *,
        interval: float,
        survey_timeout: float,
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
        clock: Callable[[], float] = time.monotonic,
        emulate: Emulate | None = None,
    ) -> None:
        self.uid = uid
        self.broker = broker
        self.local_info = local_info
        self.local_channels = local_channels
        self.interval = interval
        self.survey_timeout = survey_timeout
        self.spawn = spawn
        self.clock = clock
        #: Seconds a node's info is kept without a newer one.
        self.max_delay = 2 * interval + 1
        # The other nodes: when their info expires, and their info.
        self._nodes: dict[str, tuple[float, NodeInfo]] = {}
        self._surveys: dict[str, _Pending] = {}
        self.emulate = emulate
        # Forwards waiting for their owner: the owner's uid, and the future of its outcome.
        self._forwards: dict[str, tuple[str, asyncio.Future[str]]] = {}
        # Forwards from other nodes that run here now.
        self._running = 0
        self._publisher = Periodic("wavecast-node-info", interval, self.publish_info)

    async def start(self) -> None:
        await self.publish_info()
        self._publisher.start()

    async def stop(self) -> None:
        """Stop sending this node's info, and tell the others that it is gone."""
        await self._publisher.stop()
        await self._send(_Leave(self.uid))

    async def publish_info(self) -> None:
        """Send this node's info to every node."""
        await self._send(self.local_info())
        self._expire()

    async def _send(self, message: _Control, node: str | None = None) -> None:
        try:
            await self.broker.publish_control(_encode(message), node=node)
        except EngineError as exc:
            # The engine is away: the next info goes when it is back, and surveys time out.
            logger.debug("control message not sent: %s", exc)

    def _expire(self) -> None:
        now = self.clock()
        for uid in [uid for uid, (expires, _) in self._nodes.items() if expires <= now]:
            del self._nodes[uid]

    def on_control(self, message: bytes) -> None:
        """Take a control message that the broker delivered."""
        try:
            control = _decode(message)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            # From a node of another version, perhaps: it mustn't stop this one.
            logger.warning("ignoring a control message: %s", exc)
            return
        if isinstance(control, NodeInfo):
            if control.uid != self.uid:
                if control.uid not in self._nodes:
                    # A node new to this one may have missed its info (it started later):
                    # answer it now rather than an interval later.
                    self.spawn(self._send(self.local_info(), node=control.uid))
                self._nodes[control.uid] = (self.clock() + self.max_delay, control)
        elif isinstance(control, _Leave):
            self._nodes.pop(control.uid, None)
            for waiting in self._surveys.values():
                waiting.add(control.uid, {})
            # Its streams ended with it, and their sessions.
            for owner, outcome in self._forwards.values():
                if owner == control.uid and not outcome.done():
                    outcome.set_result("no_session")
        elif isinstance(control, _Forward):
            self._run_forward(control)
        elif isinstance(control, _Forwarded):
            forward = self._forwards.get(control.id)
            if forward is not None and not forward[1].done():
                forward[1].set_result(control.outcome)
        elif isinstance(control, _Survey):
            if control.sender != self.uid:
                reply = _SurveyReply(control.id, self.uid, self.local_channels())
                self.spawn(self._send(reply, node=control.sender))
        else:
            survey = self._surveys.get(control.id)
            if survey is not None:
                survey.add(control.sender, control.channels)

    def nodes(self) -> list[NodeInfo]:
        """Every live node's info: this node's first, then the others by name."""
        self._expire()
        others = sorted((info for _, info in self._nodes.values()), key=lambda info: (info.name, info.uid))
        return [self.local_info(), *others]

    async def channels(self) -> dict[str, int]:
        """Channels with subscribers on any live node, and how many on all of them.

        Nodes that don't answer within ``survey_timeout`` are left out (a warning is logged).
        """
        self._expire()
        total = collections.Counter(self.local_channels())
        if not self._nodes:
            return dict(total)
        survey = _Survey(secrets.token_hex(8), self.uid)
        pending = self._surveys[survey.id] = _Pending(set(self._nodes))
        try:
            await self._send(survey)
            try:
                async with asyncio.timeout(self.survey_timeout):
                    await pending.done.wait()
            except TimeoutError:
                logger.warning(
                    "channels: no answer in %s s from nodes %s", self.survey_timeout, sorted(pending.waiting)
                )
        finally:
            del self._surveys[survey.id]
        total.update(pending.channels)
        return dict(total)

    async def forward(self, node: str, session: str, data: str | bytes) -> str:
        """Run an emulation request on the session ``session`` of the node ``node``.

        Returns what the owner's ``emulate`` returned, or: ``"no_node"`` when no live node
        has that uid, ``"no_session"`` when the owner left meanwhile, ``"timeout"`` when it
        didn't answer in ``survey_timeout``, ``"unsent"`` when the engine is away, ``"busy"``
        when :data:`MAX_FORWARDS` wait already.
        """
        self._expire()
        if node not in self._nodes:
            return "no_node"
        if len(self._forwards) >= MAX_FORWARDS:
            return "busy"
        request = _Forward(secrets.token_hex(8), self.uid, session)
        if isinstance(data, str):
            request.text = data
        else:
            request.raw = data
        outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._forwards[request.id] = (node, outcome)
        try:
            try:
                await self.broker.publish_control(_encode(request), node=node)
            except EngineError as exc:
                logger.warning("emulation request not forwarded to node %s: %s", node, exc)
                return "unsent"
            try:
                async with asyncio.timeout(self.survey_timeout):
                    return await outcome
            except TimeoutError:
                logger.warning("emulation request: no answer in %s s from node %s", self.survey_timeout, node)
                return "timeout"
        finally:
            del self._forwards[request.id]

    def _run_forward(self, request: _Forward) -> None:
        if request.sender == self.uid:
            return
        if self.emulate is None or self._running >= MAX_FORWARDS:
            self.spawn(self._send(_Forwarded(request.id, "busy" if self.emulate else "no_session"), request.sender))
            return
        emulate = self.emulate
        data: str | bytes = request.text if request.text is not None else (request.raw or b"")
        self._running += 1

        async def run() -> None:
            try:
                outcome = await emulate(request.session, data)
            finally:
                self._running -= 1
            await self._send(_Forwarded(request.id, outcome), request.sender)

        # Tasks start in the order they are made, and a session takes its requests in the
        # order they ask for its lock: one session's forwards run in the order they came.
        self.spawn(run())
