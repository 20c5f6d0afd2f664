"""The messages of the Centrifugo client protocol v2, as msgspec structs.

Field names and numbers follow ``client.proto`` of the centrifugal/protocol repository. In
the JSON form, ``data`` and ``info`` fields hold any JSON value and travel as raw JSON
(:class:`msgspec.Raw`): wavecast never parses application data. Unknown fields are ignored,
as protobuf does, so newer clients keep working.
"""

from __future__ import annotations

from typing import Any

import msgspec

from ...engines.base import ClientInfo, Publication

__all__ = [
    "ClientInfoMsg",
    "Command",
    "ConnectRequest",
    "ConnectResult",
    "DisconnectMsg",
    "ErrorMsg",
    "FilterNode",
    "HistoryRequest",
    "HistoryResult",
    "JoinMsg",
    "LeaveMsg",
    "MessageMsg",
    "PresenceRequest",
    "PresenceResult",
    "PresenceStatsRequest",
    "PresenceStatsResult",
    "PublicationMsg",
    "PublishRequest",
    "PublishResult",
    "Push",
    "RPCRequest",
    "RPCResult",
    "RefreshMsg",
    "RefreshRequest",
    "RefreshResult",
    "Reply",
    "SendRequest",
    "StreamPositionMsg",
    "SubRefreshRequest",
    "SubRefreshResult",
    "SubscribeMsg",
    "SubscribeRequest",
    "SubscribeResult",
    "UnsubscribeMsg",
    "UnsubscribeRequest",
    "UnsubscribeResult",
    "client_info_msg",
    "publication_msg",
    "raw",
]


#: An absent ``data``: fields holding this very object are left out when encoding.
_EMPTY = msgspec.Raw()


def raw(data: bytes | None) -> msgspec.Raw:
    """Wrap JSON bytes for a ``data`` field; ``None`` or empty leaves the field out."""
    return msgspec.Raw(data) if data else _EMPTY


class _Msg(msgspec.Struct, omit_defaults=True):
    """Fields at their default value are left out, as proto3 JSON does."""


# --- requests ---------------------------------------------------------------------------


class FilterNode(_Msg):
    """A tags filter: a leaf compares one tag (``cmp``), a node combines others (``op``)."""

    op: str = ""
    key: str = ""
    cmp: str = ""
    val: str = ""
    vals: list[str] | None = None
    nodes: list[FilterNode] | None = None


class SubscribeRequest(_Msg):
    channel: str = ""
    token: str = ""
    recover: bool = False
    epoch: str = ""
    offset: int = 0
    data: msgspec.Raw = _EMPTY
    positioned: bool = False
    recoverable: bool = False
    join_leave: bool = False
    delta: str = ""
    tf: FilterNode | None = None
    flag: int = 0


class ConnectRequest(_Msg):
    token: str = ""
    data: msgspec.Raw = _EMPTY
    subs: dict[str, SubscribeRequest] | None = None
    name: str = ""
    version: str = ""
    headers: dict[str, str] | None = None
    flag: int = 0


class UnsubscribeRequest(_Msg):
    channel: str = ""


class PublishRequest(_Msg):
    channel: str = ""
    data: msgspec.Raw = _EMPTY


class PresenceRequest(_Msg):
    channel: str = ""


class PresenceStatsRequest(_Msg):
    channel: str = ""


class StreamPositionMsg(_Msg):
    offset: int = 0
    epoch: str = ""


class HistoryRequest(_Msg):
    channel: str = ""
    limit: int = 0
    since: StreamPositionMsg | None = None
    reverse: bool = False


class PingRequest(_Msg):
    pass


class SendRequest(_Msg):
    data: msgspec.Raw = _EMPTY


class RPCRequest(_Msg):
    data: msgspec.Raw = _EMPTY
    method: str = ""


class RefreshRequest(_Msg):
    token: str = ""


class SubRefreshRequest(_Msg):
    channel: str = ""
    token: str = ""


class Command(_Msg):
    """A command from a client; exactly one request field is set."""

    id: int = 0
    connect: ConnectRequest | None = None
    subscribe: SubscribeRequest | None = None
    unsubscribe: UnsubscribeRequest | None = None
    publish: PublishRequest | None = None
    presence: PresenceRequest | None = None
    presence_stats: PresenceStatsRequest | None = None
    history: HistoryRequest | None = None
    ping: PingRequest | None = None
    send: SendRequest | None = None
    rpc: RPCRequest | None = None
    refresh: RefreshRequest | None = None
    sub_refresh: SubRefreshRequest | None = None


class EmulationRequest(_Msg):
    """The body of ``POST /emulation``: commands for the session of an HTTP stream or SSE
    connection. In JSON, ``data`` is the commands' JSON text as a string; in Protobuf, the
    length-delimited commands as bytes."""

    node: str = ""
    session: str = ""
    data: Any = ""


# --- results and pushes ------------------------------------------------------------------


class ErrorMsg(_Msg):
    code: int
    message: str
    temporary: bool = False


class ClientInfoMsg(_Msg):
    user: str = ""
    client: str = ""
    conn_info: msgspec.Raw = _EMPTY
    chan_info: msgspec.Raw = _EMPTY


class PublicationMsg(_Msg):
    data: msgspec.Raw = _EMPTY
    info: ClientInfoMsg | None = None
    offset: int = 0
    tags: dict[str, str] | None = None
    delta: bool = False
    time: int = 0


class SubscribeResult(_Msg):
    expires: bool = False
    ttl: int = 0
    recoverable: bool = False
    epoch: str = ""
    publications: list[PublicationMsg] | None = None
    recovered: bool = False
    offset: int = 0
    positioned: bool = False
    data: msgspec.Raw = _EMPTY
    was_recovering: bool = False
    delta: bool = False
    #: The channel's id in this connection's pushes, when it negotiated channel compaction.
    id: int = 0


class ConnectResult(_Msg):
    client: str = ""
    version: str = ""
    expires: bool = False
    ttl: int = 0
    data: msgspec.Raw = _EMPTY
    subs: dict[str, SubscribeResult] | None = None
    ping: int = 0
    pong: bool = False
    session: str = ""
    node: str = ""


class UnsubscribeResult(_Msg):
    pass


class PublishResult(_Msg):
    pass


class PresenceResult(_Msg):
    # Always sent, even empty: SDKs iterate over it.
    presence: dict[str, ClientInfoMsg]


class PresenceStatsResult(_Msg):
    num_clients: int = 0
    num_users: int = 0


class HistoryResult(_Msg):
    publications: list[PublicationMsg] | None = None
    epoch: str = ""
    offset: int = 0


class PingResult(_Msg):
    pass


class RPCResult(_Msg):
    data: msgspec.Raw = _EMPTY


class RefreshResult(_Msg):
    client: str = ""
    version: str = ""
    expires: bool = False
    ttl: int = 0


class SubRefreshResult(_Msg):
    expires: bool = False
    ttl: int = 0


class JoinMsg(_Msg):
    info: ClientInfoMsg


class LeaveMsg(_Msg):
    info: ClientInfoMsg


class UnsubscribeMsg(_Msg):
    code: int = 0
    reason: str = ""


class SubscribeMsg(_Msg):
    recoverable: bool = False
    epoch: str = ""
    offset: int = 0
    positioned: bool = False
    data: msgspec.Raw = _EMPTY


class MessageMsg(_Msg):
    data: msgspec.Raw = _EMPTY


class DisconnectMsg(_Msg):
    code: int = 0
    reason: str = ""
    reconnect: bool = False


class RefreshMsg(_Msg):
    expires: bool = False
    ttl: int = 0


class Push(_Msg):
    channel: str = ""
    pub: PublicationMsg | None = None
    join: JoinMsg | None = None
    leave: LeaveMsg | None = None
    unsubscribe: UnsubscribeMsg | None = None
    message: MessageMsg | None = None
    subscribe: SubscribeMsg | None = None
    connect: ConnectResult | None = None
    disconnect: DisconnectMsg | None = None
    refresh: RefreshMsg | None = None
    #: Instead of ``channel``, for a subscription with channel compaction (its subscribe result's ``id``).
    id: int = 0


class Reply(_Msg):
    """A reply to a command (``id`` > 0), a push (``push`` set), or the server's ping (empty)."""

    id: int = 0
    error: ErrorMsg | None = None
    push: Push | None = None
    connect: ConnectResult | None = None
    subscribe: SubscribeResult | None = None
    unsubscribe: UnsubscribeResult | None = None
    publish: PublishResult | None = None
    presence: PresenceResult | None = None
    presence_stats: PresenceStatsResult | None = None
    history: HistoryResult | None = None
    ping: PingResult | None = None
    rpc: RPCResult | None = None
    refresh: RefreshResult | None = None
    sub_refresh: SubRefreshResult | None = None


# --- from the engines' types ---------------------------------------------------------------


def client_info_msg(info: ClientInfo) -> ClientInfoMsg:
    return ClientInfoMsg(
        user=info.user,
        client=info.client,
        conn_info=raw(info.conn_info),
        chan_info=raw(info.chan_info),
    )


def publication_msg(publication: Publication) -> PublicationMsg:
    return PublicationMsg(
        data=raw(publication.data),
        info=None if publication.info is None else client_info_msg(publication.info),
        offset=publication.offset,
        tags=None if not publication.tags else dict(publication.tags),
        time=publication.time,
    )
