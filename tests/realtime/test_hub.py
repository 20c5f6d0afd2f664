"""hub: the local index of sessions by client and user, and of subscribers by channel."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

from wavecast.realtime.codec import Codec, JSONCodec, ProtobufCodec
from wavecast.realtime.codec.schema import FilterNode
from wavecast.realtime.config import ChannelOptions
from wavecast.realtime.hub import Hub
from wavecast.realtime.subscription import Subscription
from wavecast.realtime.tagsfilter import compile_filter


@dataclasses.dataclass(eq=False)
class StubSession:
    client: str
    user: str
    codec: Codec = JSONCodec


def session(client: str, user: str, codec: Codec = JSONCodec) -> Any:
    return cast(Any, StubSession(client, user, codec))


def sub(channel: str) -> Subscription:
    return Subscription(channel, ChannelOptions())


def hub_of(*sessions: Any) -> Hub:
    """Return a hub with ``sessions`` added, in order."""
    hub = Hub()
    for added in sessions:
        hub.add_session(added)
    return hub


def test_empty() -> None:
    hub = Hub()
    assert (hub.num_sessions, hub.num_users, hub.num_subscriptions) == (0, 0, 0)
    assert hub.sessions() == []
    assert hub.session("c1") is None
    assert hub.user_sessions("42") == []
    assert hub.subscribers("ch") is None
    assert hub.channels() == {}


def test_sessions_by_client_and_user() -> None:
    one, two, three = session("c1", "42"), session("c2", "42"), session("c3", "")
    hub = hub_of(one, two, three)
    assert (hub.num_sessions, hub.num_users) == (3, 2)
    assert hub.session("c2") is two
    assert set(hub.user_sessions("42")) == {one, two}
    assert hub.user_sessions("") == [three]
    assert set(hub.sessions()) == {one, two, three}


def test_remove_session() -> None:
    one, two = session("c1", "42"), session("c2", "42")
    hub = hub_of(one, two)
    hub.remove_session(one)
    assert hub.session("c1") is None
    assert hub.user_sessions("42") == [two]
    hub.remove_session(two)
    assert (hub.num_sessions, hub.num_users) == (0, 0)
    # Twice, or never added: nothing happens.
    hub.remove_session(two)
    hub.remove_session(session("c9", "9"))


def test_remove_session_keeps_another_session_with_the_same_client_id() -> None:
    old, new = session("c1", "42"), session("c1", "43")
    hub = hub_of(old, new)
    hub.remove_session(old)
    assert hub.session("c1") is new
    assert hub.user_sessions("43") == [new]
    assert hub.user_sessions("42") == []


def test_user_sessions_is_a_copy() -> None:
    hub = hub_of(session("c1", "42"))
    hub.user_sessions("42").clear()
    assert len(hub.user_sessions("42")) == 1


def test_subscribers() -> None:
    hub = Hub()
    one, two = session("c1", "42"), session("c2", "43")
    sub_one, sub_two = sub("ch"), sub("ch")
    assert hub.add_subscriber("ch", one, sub_one) is True
    assert hub.add_subscriber("ch", two, sub_two) is False
    assert hub.add_subscriber("other", one, sub("other")) is True
    assert hub.subscribers("ch") == {one: sub_one, two: sub_two}
    assert hub.channels() == {"ch": 2, "other": 1}
    assert hub.num_subscriptions == 3


def test_remove_subscriber() -> None:
    hub = Hub()
    one, two = session("c1", "42"), session("c2", "43")
    hub.add_subscriber("ch", one, sub("ch"))
    hub.add_subscriber("ch", two, sub("ch"))
    assert hub.remove_subscriber("ch", one) is False
    assert list(hub.subscribers("ch") or {}) == [two]
    # A session that isn't subscribed leaves the others alone.
    assert hub.remove_subscriber("ch", one) is False
    assert hub.remove_subscriber("ch", two) is True
    assert hub.subscribers("ch") is None
    assert hub.channels() == {}
    assert hub.remove_subscriber("ch", two) is False


def test_add_subscriber_again_replaces_the_subscription() -> None:
    hub = Hub()
    one = session("c1", "42")
    first, second = sub("ch"), sub("ch")
    hub.add_subscriber("ch", one, first)
    hub.add_subscriber("ch", one, second)
    assert hub.subscribers("ch") == {one: second}


def test_binary_subscribers_are_counted_per_channel() -> None:
    hub = Hub()
    text, binary, other = session("c1", "1"), session("c2", "2", ProtobufCodec), session("c3", "3", ProtobufCodec)
    hub.add_subscriber("ch", text, sub("ch"))
    assert hub.binary_subscribers == {}
    hub.add_subscriber("ch", binary, sub("ch"))
    hub.add_subscriber("ch", binary, sub("ch"))  # again: still one
    hub.add_subscriber("ch", other, sub("ch"))
    assert hub.binary_subscribers == {"ch": 2}
    hub.remove_subscriber("ch", binary)
    hub.remove_subscriber("ch", binary)  # not subscribed any more: no change
    assert hub.binary_subscribers == {"ch": 1}
    hub.remove_subscriber("ch", other)
    assert hub.binary_subscribers == {}
    assert hub.subscribers("ch") == {text: hub.subscribers("ch")[text]}  # type: ignore[index]


def compact(channel: str) -> Subscription:
    subscription = sub(channel)
    subscription.compact = True
    return subscription


def test_channel_ids_number_channels_with_subscribers() -> None:
    hub = Hub()
    one, two = session("c1", "1"), session("c2", "2")
    a, b, named = compact("a"), compact("b"), sub("a")
    hub.add_subscriber("a", one, a)
    hub.add_subscriber("b", one, b)
    hub.add_subscriber("a", two, named)
    assert (a.channel_id, b.channel_id, named.channel_id) == (hub.channel_ids["a"], hub.channel_ids["b"], 0)
    assert a.channel_id != b.channel_id
    assert hub.compact_subscribers == {"a": 1, "b": 1}
    # Replaced by a subscription that names the channel, then gone: counted out, and a channel
    # without subscribers loses its id; a new one is never an id seen before.
    hub.add_subscriber("a", one, sub("a"))
    assert hub.compact_subscribers == {"b": 1}
    hub.remove_subscriber("b", one)
    assert "b" not in hub.channel_ids
    assert hub.compact_subscribers == {}
    again = compact("b")
    hub.add_subscriber("b", two, again)
    assert again.channel_id not in (a.channel_id, b.channel_id)


# --- channels whose subscribers filter by tags or take deltas ---------------------------------


def shaped_sub(channel: str, *, tags_filter: Any = None, delta: bool = False) -> Subscription:
    subscription = sub(channel)
    subscription.tags_filter = tags_filter
    subscription.delta = delta
    return subscription


def test_a_channel_takes_a_shape_with_its_first_filter_or_delta_and_loses_it_with_its_last() -> None:
    first = compile_filter(FilterNode(key="k", cmp="eq", val="a"))
    second = compile_filter(FilterNode(key="k", cmp="eq", val="b"))
    a, b, c, d, e = (session(name, name) for name in "abcde")
    hub = hub_of(a, b, c, d, e)
    hub.add_subscriber("feed", a, sub("feed"))
    assert hub.shapes == {}
    hub.add_subscriber("feed", b, shaped_sub("feed", tags_filter=first))
    hub.add_subscriber("feed", c, shaped_sub("feed", tags_filter=first))
    hub.add_subscriber("feed", d, shaped_sub("feed", tags_filter=second))
    hub.add_subscriber("feed", e, shaped_sub("feed", delta=True))
    shape = hub.shapes["feed"]
    assert list(shape.plain) == [a]
    assert {key: list(group) for key, group in shape.filtered.items()} == {first: [b, c], second: [d]}
    assert list(shape.delta) == [e]

    hub.remove_subscriber("feed", d)
    assert second not in shape.filtered
    hub.add_subscriber("feed", b, sub("feed"))  # subscribed again, without a filter
    assert list(shape.plain) == [a, b] and list(shape.filtered[first]) == [c]
    hub.remove_subscriber("feed", c)
    hub.remove_subscriber("feed", e)
    assert hub.shapes == {}
    hub.remove_subscriber("feed", a)
    hub.remove_subscriber("feed", b)
    assert hub.subscribers("feed") is None
