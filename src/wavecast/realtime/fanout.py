"""The way a publication travels to a node's subscribers: the one fan-out path.

A publication that a broker delivers is encoded once per form in use (JSON, protobuf), and
the same prepared message goes to every subscriber of that form, as centrifuge's
``hub.broadcastPublication`` does. :func:`deliver` handles the common case: a subscribed
client, in order when positioned, whose queue is empty and whose transport takes the
message now. It speaks to sessions through the :class:`~.transport.Transport` protocol only,
and ``wavecast.realtime._speedups.deliver`` is its twin in C, with the same signature and
the same effects (``tests/realtime/test_fanout.py`` runs both over the same cases). Every
other subscriber comes back to :meth:`FanOut.publication`, which applies the rules for
subscriptions being set up, gaps in a stream, and full queues (the slow-consumer policies).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import msgspec

from ..codes import DISCONNECT_INAPPROPRIATE_PROTOCOL
from ..engines.base import Publication, StreamPosition
from ..protocol.prepared import PreparedMessage
from ..speedups import load
from .codec import Codec
from .codec.json import JSONCodec
from .codec.protobuf import ProtobufCodec
from .codec.schema import Push, Reply, publication_msg
from .config import NodeConfig
from .delta import prepare as prepare_delta
from .hub import ChannelShape, Hub
from .outbox import Outbox
from .session import CLOSED, Session
from .stats import NodeStats
from .subscription import SUBSCRIBED, Subscription
from .tagsfilter import TagsFilter
from .websocket import WebSocketTransport

__all__ = ["NATIVE_FIELDS", "FanOut", "deliver", "deliver_python"]

logger = logging.getLogger("wavecast.realtime")

Subscribers = Mapping[Session, Subscription]
Rest = list[tuple[Session, Subscription]]


class _Plain:
    """The base of a plain group: no delta (``None`` is a delta group's "nothing received yet")."""


_PLAIN = _Plain()

#: The fields that the C twin reads in each class, in the order it reads them: it gets the
#: names from here, and ``tests/realtime/test_fanout.py`` checks them against the classes'
#: ``__slots__``, so a rename fails a test wherever the extension is built or not.
NATIVE_FIELDS: dict[type, tuple[str, ...]] = {
    Session: ("state", "outbox", "transport"),
    Subscription: ("state", "positioned", "epoch", "offset"),
    Outbox: ("size",),
    WebSocketTransport: ("connection",),
}


def deliver_python(
    subscribers: Subscribers, message: PreparedMessage, offset: int, epoch: str | None
) -> tuple[int, Rest]:
    """Send ``message`` to the subscribers it can go to now; return how many, and the rest.

    A subscriber goes to the rest, untouched, when its subscription is still being set up,
    when it is positioned and ``offset`` isn't the next one of its stream (``epoch``), when
    its session's queue holds messages, or when its transport isn't writable. A closed
    session counts as delivered: its messages are dropped, as :meth:`Session.deliver` does.
    """
    delivered = 0
    rest: Rest = []
    for session, subscription in subscribers.items():
        if subscription.state is not SUBSCRIBED:
            rest.append((session, subscription))
            continue
        advance = bool(offset) and subscription.positioned
        if advance and ((epoch is not None and epoch != subscription.epoch) or offset != subscription.offset + 1):
            rest.append((session, subscription))
            continue
        if session.state is not CLOSED:
            transport = session.transport
            outbox = session.outbox
            if (outbox is not None and outbox.size) or not transport.writable():
                rest.append((session, subscription))
                continue
            try:
                transport.write(message)
            except Exception:
                # Its own failure: the rest's rules end that session only.
                rest.append((session, subscription))
                continue
        if advance:
            subscription.offset = offset
        delivered += 1
    return delivered, rest


_native = load("wavecast.realtime._speedups")
if _native is not None:
    _native.configure(*(item for cls, fields in NATIVE_FIELDS.items() for item in (cls, fields)), SUBSCRIBED, CLOSED)

#: The fan-out of the common case: the C twin when it is built, else :func:`deliver_python`.
deliver: Callable[[Subscribers, PreparedMessage, int, str | None], tuple[int, Rest]] = (
    deliver_python if _native is None else _native.deliver
)


class FanOut:
    """Sends publications, joins and leaves to this node's subscribers of a channel.

    Args:
        hub: the node's index of subscribers.
        config: the node's configuration (channel options).
        stats: counters to update.
        resubscribe: called for a positioned subscriber that can't trust its position any
            more (a gap, a stream that started again): it is unsubscribed with 2500 and
            recovers when it subscribes again.
    """

    def __init__(
        self, hub: Hub, config: NodeConfig, stats: NodeStats, resubscribe: Callable[[Session, str], None]
    ) -> None:
        self.hub = hub
        self.config = config
        self.stats = stats
        self.resubscribe = resubscribe

    def conflation_key(self, channel: str, publication: Publication) -> object:
        """The key under which the ``conflate`` policy keeps only the latest publication."""
        options = self.config.channel_options(channel)
        if options is None or options.conflation_key_tag is None or not publication.tags:
            return channel
        return (channel, publication.tags.get(options.conflation_key_tag))

    def publication(self, channel: str, publication: Publication, position: StreamPosition | None) -> None:
        """Send a publication to this node's subscribers of ``channel``.

        A channel whose subscribers all speak JSON takes one group; otherwise subscribers are
        grouped by codec. A JSON subscriber can't receive binary data: it is disconnected
        with 3506, as Centrifugo does. In a channel where subscribers filter by tags or take
        deltas (:class:`~.hub.ChannelShape`), each filter is evaluated once, each delta is
        computed once per previous publication that subscribers hold, and every group goes
        the same way as the plain subscribers.
        """
        subscribers = self.hub.subscribers(channel)
        if not subscribers:
            return
        epoch = None if position is None else position.epoch
        key = self.conflation_key(channel, publication)
        shape = self.hub.shapes.get(channel)
        if shape is None:
            total = self._send(channel, subscribers, publication, epoch, key)
        else:
            total = self._send_shaped(channel, shape, publication, epoch, key)
        self.stats.deliveries += total
        if total and publication.time:
            self.stats.observe_latency(max(time.time() - publication.time / 1000, 0.0))

    def _send(
        self,
        channel: str,
        subscribers: Subscribers,
        publication: Publication,
        epoch: str | None,
        key: Any,
        base: bytes | _Plain | None = _PLAIN,
    ) -> int:
        """Send to a group of subscribers, plain or (given their ``base``) delta; return how many got it."""
        groups: tuple[tuple[Codec, Subscribers], ...]
        if publication.binary or channel in self.hub.binary_subscribers:
            groups = self._by_codec(subscribers, publication)
        else:
            groups = ((JSONCodec, subscribers),)
        channel_id = self.hub.channel_ids[channel] if channel in self.hub.compact_subscribers else 0
        offset = publication.offset
        stats = self.stats
        total = 0
        for codec, whole in groups:
            # Subscribers that negotiated channel compaction get the push with the channel's
            # id: one more encoding for them, shared as the others' is.
            for group, group_id in _by_compaction(whole, channel_id) if channel_id else ((whole, 0),):
                if not group:
                    continue
                if isinstance(base, _Plain):
                    message = _prepare(codec, channel, publication, group_id)
                else:
                    message = prepare_delta(codec, channel, publication, base, group_id)
                delivered, rest = deliver(group, message, offset, epoch)
                if rest:
                    delivered += self._deliver_rest(rest, channel, publication, epoch, message, key)
                total += delivered
                stats.messages_out += delivered
                stats.bytes_out += delivered * len(message.payload)
        return total

    def _send_shaped(
        self, channel: str, shape: ChannelShape, publication: Publication, epoch: str | None, key: Any
    ) -> int:
        total = self._send(channel, shape.plain, publication, epoch, key) if shape.plain else 0
        tags = publication.tags
        matches: dict[TagsFilter, bool] = {}
        for tags_filter, group in shape.filtered.items():
            matches[tags_filter] = match = tags_filter.match(tags)
            if match:
                total += self._send(channel, group, publication, epoch, key)
            else:
                self._pass_over(channel, group.items(), publication, epoch)
        if not shape.delta:
            return total
        # Deltas by the previous publication their subscribers hold: one for all of them
        # when they have all received the channel's previous publication.
        by_base: dict[int, tuple[bytes | None, dict[Session, Subscription]]] = {}
        passed_over: Rest = []
        for session, subscription in shape.delta.items():
            delta_filter = subscription.tags_filter
            if delta_filter is not None:
                known = matches.get(delta_filter)
                if known is None:
                    known = matches[delta_filter] = delta_filter.match(tags)
                if not known:
                    passed_over.append((session, subscription))
                    continue
            base = subscription.base if publication.delta else None
            entry = by_base.get(id(base))
            if entry is None:
                entry = by_base[id(base)] = (base, {})
            entry[1][session] = subscription
        if passed_over:
            self._pass_over(channel, passed_over, publication, epoch)
        data = publication.data
        for base, group in by_base.values():
            total += self._send(channel, group, publication, epoch, key, base)
            for subscription in group.values():
                if subscription.state is SUBSCRIBED:
                    subscription.base = data
        return total

    def _pass_over(
        self,
        channel: str,
        subscribers: Iterable[tuple[Session, Subscription]],
        publication: Publication,
        epoch: str | None,
    ) -> None:
        """A publication that subscribers' tags filters drop: positioned ones move past its offset."""
        offset = publication.offset
        if not offset:
            return
        for session, subscription in subscribers:
            if subscription.state is not SUBSCRIBED:
                if subscription.pending is not None:
                    # Filtered when it goes live: it moves the position there.
                    subscription.pending.append(publication)
                continue
            if not subscription.positioned or offset <= subscription.offset:
                continue
            if (epoch is not None and epoch != subscription.epoch) or offset != subscription.offset + 1:
                self.resubscribe(session, channel)
                continue
            subscription.offset = offset

    def _deliver_rest(
        self, rest: Rest, channel: str, publication: Publication, epoch: str | None, message: PreparedMessage, key: Any
    ) -> int:
        """Apply the rules of the subscribers that :func:`deliver` left; return how many got it."""
        offset = publication.offset
        delivered = 0
        for session, subscription in rest:
            if subscription.state is not SUBSCRIBED:
                if subscription.pending is not None:
                    subscription.pending.append(publication)
                continue
            positioned = bool(offset) and subscription.positioned
            if positioned:
                if (epoch is not None and epoch != subscription.epoch) or (
                    offset != subscription.offset + 1 and offset > subscription.offset
                ):
                    # A gap, or a stream that started again: the client can't trust its
                    # position; it resubscribes and recovers.
                    self.resubscribe(session, channel)
                    continue
                if offset <= subscription.offset:
                    continue
            try:
                session.deliver(message, subscription.options.slow_consumer, key)
            except Exception as exc:
                # One subscriber's failure is its own: the others still get the publication,
                # and this one reconnects and recovers what it didn't get.
                session.fail(exc)
                continue
            # Only what was sent moves the position: the gap check of the next one relies on it.
            if positioned:
                subscription.offset = offset
            delivered += 1
        return delivered

    @staticmethod
    def _by_codec(subscribers: Subscribers, publication: Publication) -> tuple[tuple[Codec, Subscribers], ...]:
        """Group a channel's subscribers by codec, for a channel with protobuf subscribers or a
        binary publication; JSON subscribers of a binary publication are disconnected (3506)."""
        text: dict[Session, Subscription] = {}
        binary: dict[Session, Subscription] = {}
        for session, subscription in subscribers.items():
            (binary if session.codec.binary else text)[session] = subscription
        if not publication.binary:
            return ((JSONCodec, text), (ProtobufCodec, binary))
        for session, subscription in text.items():
            if subscription.state is SUBSCRIBED:
                session.disconnect(DISCONNECT_INAPPROPRIATE_PROTOCOL)
            elif subscription.pending is not None:
                # It goes live after its subscribe reply, and is disconnected then.
                subscription.pending.append(publication)
        return ((ProtobufCodec, binary),)

    def push(self, channel: str, push: Push) -> None:
        """Send a join or leave push to the subscribers of ``channel`` that asked for them."""
        subscribers = self.hub.subscribers(channel)
        if not subscribers:
            return
        messages: dict[tuple[Codec, int], PreparedMessage] = {}
        for session, subscription in list(subscribers.items()):
            if subscription.state is SUBSCRIBED and subscription.join_leave:
                codec = session.codec
                channel_id = subscription.channel_id
                message = messages.get((codec, channel_id))
                if message is None:
                    form = msgspec.structs.replace(push, channel="", id=channel_id) if channel_id else push
                    message = messages[codec, channel_id] = PreparedMessage(
                        codec.encode_reply(Reply(push=form)), text=not codec.binary
                    )
                session.send(message)

    def continuity_lost(self, channels: list[str]) -> None:
        """Publications may have been missed: positioned subscribers resubscribe and recover (2500)."""
        for channel in channels:
            subscribers = self.hub.subscribers(channel)
            if not subscribers:
                continue
            for session, subscription in list(subscribers.items()):
                if subscription.positioned:
                    self.resubscribe(session, channel)


def _by_compaction(subscribers: Subscribers, channel_id: int) -> tuple[tuple[Subscribers, int], ...]:
    """Split a group of subscribers into those that name the channel and those that number it."""
    named: dict[Session, Subscription] = {}
    numbered: dict[Session, Subscription] = {}
    for session, subscription in subscribers.items():
        (numbered if subscription.channel_id else named)[session] = subscription
    return ((named, 0), (numbered, channel_id))


def _prepare(codec: Codec, channel: str, publication: Publication, channel_id: int = 0) -> PreparedMessage:
    if codec is JSONCodec and not channel_id:
        # JSONCodec.encode_publication, inlined: the common case pays no extra call.
        push = Push(channel=channel, pub=publication_msg(publication))
        return PreparedMessage(JSONCodec.encode_reply(Reply(push=push)), text=True)
    return PreparedMessage(codec.encode_publication(channel, publication, channel_id), text=not codec.binary)
