"""What hooks receive and may return.

Hooks are coroutine functions set on a :class:`~wavecast.realtime.node.Node`. Each may
refuse with ``raise CommandError(...)`` (an error reply) or ``raise DisconnectError(...)``
(the client is disconnected).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..codes import Disconnect
from ..protocol.events import Request
from .codec.json import json_data
from .permissions import can_publish, can_subscribe

if TYPE_CHECKING:
    from .session import Session

__all__ = [
    "ConnectResult",
    "ConnectingContext",
    "DisconnectContext",
    "MessageContext",
    "OnConnecting",
    "OnDisconnect",
    "OnMessage",
    "OnPublish",
    "OnRefresh",
    "OnSubRefresh",
    "OnSubscribe",
    "PublishContext",
    "PublishResult",
    "RPCContext",
    "RPCHandler",
    "RefreshContext",
    "RefreshResult",
    "SubRefreshContext",
    "SubscribeContext",
    "SubscribeResult",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConnectingContext:
    """A client asks to connect.

    Attributes:
        client: the id the connection will have.
        transport: ``"websocket"``.
        request: the HTTP request that opened the connection (headers, cookies, query).
        token_user: the user of a valid connection token, if one was sent.
        data: the ``data`` of the connect command: raw JSON from a JSON client, any bytes from
            a protobuf one (``session.codec`` says which; see docs/protocol.md, Binary data).
        name, version: what the client SDK says it is.
        protocol: ``"json"`` or ``"protobuf"``, the client's form of the protocol.
    """

    client: str
    transport: str
    request: Request | None
    token_user: str | None
    data: bytes | None
    name: str
    version: str
    protocol: str = "json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConnectResult:
    """What ``on_connecting`` grants.

    Attributes:
        user: the user id; ``""`` for an anonymous connection.
        info: JSON bytes attached to the connection, seen in presence and publications.
        expire_at: Unix seconds when the client must have refreshed; 0 never expires.
        channels: channels to subscribe the client to on the server side.
        data: bytes sent back in the connect reply: JSON, unless the client speaks protobuf.
        meta: JSON kept with the connection and never sent to clients (as a token's ``meta``),
            e.g. for the event proxies' ``include_connection_meta``.
    """

    user: str
    info: bytes | None = None
    expire_at: int = 0
    channels: Sequence[str] = ()
    data: bytes | None = None
    meta: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "info", _json_info(self.info))


@dataclasses.dataclass(frozen=True, kw_only=True)
class SubscribeContext:
    """A client asks to subscribe to ``channel``; ``data`` is the client's: raw JSON, or any
    bytes from a protobuf client."""

    session: Session
    channel: str
    data: bytes | None

    def allowed_by_options(self) -> bool:
        """Whether the channel's options alone let this client subscribe, as the node decides
        when no ``on_subscribe`` hook is set; a hook may defer to it."""
        options = self.session.node.config.channel_options(self.channel)
        return options is not None and can_subscribe(options, self.session.user)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SubscribeResult:
    """What ``on_subscribe`` grants: ``info`` for the subscription, ``data`` for the reply
    (JSON, or bytes that aren't for a protobuf client only: a JSON client is disconnected with 3506)."""

    info: bytes | None = None
    expire_at: int = 0
    data: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "info", _json_info(self.info))


def _json_info(info: bytes | None) -> bytes | None:
    """Check that ``info`` is JSON, which every client receives in presence and publications.

    Raises:
        ValueError: ``info`` isn't JSON in UTF-8.
    """
    if info is None:
        return None
    compact = json_data(info)
    if compact is None:
        raise ValueError(f"info must be JSON, got {info[:40]!r}")
    return compact


@dataclasses.dataclass(frozen=True, kw_only=True)
class PublishContext:
    """A client publishes ``data`` to ``channel``: raw JSON, or any bytes from a protobuf client."""

    session: Session
    channel: str
    data: bytes

    def allowed_by_options(self) -> bool:
        """Whether the channel's options alone let this client publish, as the node decides
        when no ``on_publish`` hook is set; a hook may defer to it."""
        options = self.session.node.config.channel_options(self.channel)
        session = self.session
        return options is not None and can_publish(options, session.user, session.is_subscribed(self.channel))


@dataclasses.dataclass(frozen=True, kw_only=True)
class PublishResult:
    """What ``on_publish`` decides: publish ``data`` instead, with ``tags``; or skip it.

    ``data`` that isn't JSON is binary: only protobuf subscribers receive it.
    """

    data: bytes | None = None
    tags: Mapping[str, str] | None = None
    skip: bool = False


@dataclasses.dataclass(frozen=True, kw_only=True)
class RPCContext:
    """A client calls ``method`` with ``data``: raw JSON, or any bytes from a protobuf client."""

    session: Session
    method: str
    data: bytes | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class RefreshContext:
    """A connection reached its ``expire_at``; ``on_refresh`` decides whether it lives on.

    With ``on_refresh`` set, connections are refreshed by the server (Centrifugo's refresh
    proxy): clients aren't told that their connection expires and don't send refresh.
    """

    session: Session


@dataclasses.dataclass(frozen=True, kw_only=True)
class RefreshResult:
    """What ``on_refresh`` and ``on_sub_refresh`` decide: ``expired`` ends the connection
    (3005) or the subscription (2501); otherwise it lives until ``expire_at`` (Unix seconds,
    0 for ever), with new ``info`` if given."""

    expired: bool = False
    expire_at: int = 0
    info: bytes | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "info", _json_info(self.info))


@dataclasses.dataclass(frozen=True, kw_only=True)
class SubRefreshContext:
    """A subscription to ``channel`` reached its ``expire_at``; ``on_sub_refresh`` decides
    whether it lives on. With ``on_sub_refresh`` set, subscriptions are refreshed by the
    server (Centrifugo's sub_refresh proxy), checked every ``presence_update_interval``."""

    session: Session
    channel: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class MessageContext:
    """A client sent an asynchronous message (the ``send`` command); no reply goes back."""

    session: Session
    data: bytes | None


@dataclasses.dataclass(frozen=True, kw_only=True)
class DisconnectContext:
    """A client disconnected; ``disconnect`` says why."""

    session: Session
    disconnect: Disconnect


OnConnecting = Callable[[ConnectingContext], Awaitable[ConnectResult | None]]
OnSubscribe = Callable[[SubscribeContext], Awaitable[SubscribeResult | None]]
OnPublish = Callable[[PublishContext], Awaitable[PublishResult | None]]
#: Returns the reply's data: bytes (JSON for a JSON client; a JSON client given other bytes is
#: disconnected with 3506), or any value that JSON can hold, sent as JSON to either form.
RPCHandler = Callable[[RPCContext], Awaitable[Any]]
OnMessage = Callable[[MessageContext], Awaitable[None]]
OnRefresh = Callable[[RefreshContext], Awaitable[RefreshResult]]
OnSubRefresh = Callable[[SubRefreshContext], Awaitable[RefreshResult]]
OnDisconnect = Callable[[DisconnectContext], Awaitable[None]]
