"""The server HTTP API, compatible with Centrifugo's: ``POST /api/<method>`` with JSON.

Requests authenticate with ``X-API-Key: <key>`` or ``Authorization: apikey <key>``. A reply is
``{"result": {...}}`` or ``{"error": {"code": N, "message": "..."}}`` with HTTP 200; a bad key
gets 401, an unknown method 404. The ``cent`` package on PyPI works against it unchanged.

Binary data, which JSON can't hold, goes in base64 as Centrifugo's ``b64data``: in publish and
broadcast requests (it wins over ``data``), and in the publications of history results.
"""

from __future__ import annotations

import base64
import hmac
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import msgspec

from ..codes import (
    ERROR_BAD_REQUEST,
    ERROR_INTERNAL,
    ERROR_METHOD_NOT_FOUND,
    ERROR_NOT_AVAILABLE,
    ERROR_UNKNOWN_CHANNEL,
    Disconnect,
    Error,
)
from ..engines.base import ClientInfo, Publication, StreamPosition
from ..exceptions import CommandError, ConfigError, EngineError
from ..realtime.codec.json import binary_or_json
from ..realtime.config import ChannelOptions
from ..realtime.node import Node

__all__ = ["API_METHODS", "ApiResponse", "call_api", "handle_api", "request_api_key"]

logger = logging.getLogger("wavecast.api")

_EMPTY = msgspec.Raw()


class _Req(msgspec.Struct, omit_defaults=True):
    pass


class PublishRequest(_Req):
    channel: str
    data: msgspec.Raw = _EMPTY
    b64data: str = ""
    tags: dict[str, str] | None = None
    skip_history: bool = False
    idempotency_key: str = ""
    delta: bool = False


class BroadcastRequest(_Req):
    channels: list[str]
    data: msgspec.Raw = _EMPTY
    b64data: str = ""
    tags: dict[str, str] | None = None
    skip_history: bool = False
    idempotency_key: str = ""
    delta: bool = False


class UserChannelRequest(_Req):
    user: str
    channel: str
    client: str = ""


class DisconnectSpec(_Req):
    code: int = 0
    reason: str = ""


class DisconnectRequest(_Req):
    user: str
    client: str = ""
    disconnect: DisconnectSpec | None = None


class RefreshRequest(_Req):
    user: str
    client: str = ""
    expired: bool = False
    expire_at: int = 0


class ChannelRequest(_Req):
    channel: str


class Position(_Req):
    offset: int = 0
    epoch: str = ""


class HistoryRequest(_Req):
    channel: str
    limit: int = 0
    since: Position | None = None
    reverse: bool = False


class ChannelsRequest(_Req):
    pattern: str = ""


class EmptyRequest(_Req):
    pass


_decode_raw = msgspec.json.Decoder(dict[str, msgspec.Raw]).decode
_encode = msgspec.json.Encoder().encode

ApiResponse = tuple[int, bytes]


def request_api_key(headers: Mapping[str, str]) -> str | None:
    """Return the API key a request carries, if any. ``headers`` are looked up lowercase."""
    key = headers.get("x-api-key")
    if key:
        return key
    authorization = headers.get("authorization", "")
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "apikey" and value:
        return value.strip()
    return None


def _info(info: ClientInfo) -> dict[str, Any]:
    result: dict[str, Any] = {"client": info.client, "user": info.user}
    if info.conn_info:
        result["conn_info"] = msgspec.Raw(info.conn_info)
    if info.chan_info:
        result["chan_info"] = msgspec.Raw(info.chan_info)
    return result


def _publication(publication: Publication) -> dict[str, Any]:
    result: dict[str, Any] = {"offset": publication.offset}
    if publication.binary:
        result["b64data"] = base64.b64encode(publication.data).decode()
    else:
        result["data"] = msgspec.Raw(publication.data)
    if publication.info is not None:
        result["info"] = _info(publication.info)
    if publication.tags:
        result["tags"] = dict(publication.tags)
    return result


def _position(position: StreamPosition | None) -> dict[str, Any]:
    return {} if position is None else {"offset": position.offset, "epoch": position.epoch}


def _check_channel(node: Node, channel: str) -> None:
    if not node.config.channel_name_allowed(channel):
        raise CommandError(ERROR_BAD_REQUEST)
    if node.config.channel_options(channel) is None:
        raise CommandError(ERROR_UNKNOWN_CHANNEL)


# Options without history: how a publication with skip_history goes out.
_NO_HISTORY = ChannelOptions()


async def _publish_data(
    node: Node, channel: str, data: bytes, request: PublishRequest | BroadcastRequest
) -> StreamPosition | None:
    key = request.idempotency_key or None
    if not request.skip_history:
        return await node.publish(channel, data, tags=request.tags, idempotency_key=key, delta=request.delta)
    # Centrifugo's skip_history: deliver to subscribers, keep nothing, leave the stream's position.
    data, binary = binary_or_json(data)
    publication = Publication(
        data=data, tags=request.tags, time=int(time.time() * 1000), binary=binary, delta=request.delta
    )
    return await node.publish_publication(channel, publication, _NO_HISTORY, idempotency_key=key)


def _check_idempotency_key(node: Node, key: str) -> None:
    try:
        node.check_idempotency_key(key)
    except ConfigError as exc:
        raise CommandError(ERROR_BAD_REQUEST) from exc


def _request_data(data: msgspec.Raw, b64data: str) -> bytes:
    """The data of a publish or broadcast: ``b64data`` decoded, else ``data``; never empty."""
    if b64data:
        try:
            payload = base64.b64decode(b64data, validate=True)
        except ValueError as exc:  # binascii.Error, or text that isn't ASCII
            raise CommandError(ERROR_BAD_REQUEST) from exc
    else:
        payload = bytes(data)
    if not payload:
        raise CommandError(ERROR_BAD_REQUEST)
    return payload


async def _publish(node: Node, body: bytes) -> dict[str, Any]:
    request = msgspec.json.decode(body, type=PublishRequest)
    _check_channel(node, request.channel)
    _check_idempotency_key(node, request.idempotency_key)
    data = _request_data(request.data, request.b64data)
    return _position(await _publish_data(node, request.channel, data, request))


async def _broadcast(node: Node, body: bytes) -> dict[str, Any]:
    request = msgspec.json.decode(body, type=BroadcastRequest)
    _check_idempotency_key(node, request.idempotency_key)
    data = _request_data(request.data, request.b64data)
    responses: list[dict[str, Any]] = []
    for channel in request.channels:
        try:
            _check_channel(node, channel)
            position = await _publish_data(node, channel, data, request)
            responses.append({"result": _position(position)})
        except CommandError as exc:
            responses.append({"error": _error(exc.error)})
        except EngineError as exc:
            logger.warning("broadcast to %s failed: %s", channel, exc)
            responses.append({"error": _error(ERROR_INTERNAL)})
    return {"responses": responses}


async def _subscribe(node: Node, body: bytes) -> dict[str, Any]:
    request = msgspec.json.decode(body, type=UserChannelRequest)
    _check_channel(node, request.channel)
    await node.subscribe(request.user, request.channel, client=request.client or None)
    return {}


async def _unsubscribe(node: Node, body: bytes) -> dict[str, Any]:
    request = msgspec.json.decode(body, type=UserChannelRequest)
    await node.unsubscribe(request.user, request.channel, client=request.client or None)
    return {}


async def _disconnect(node: Node, body: bytes) -> dict[str, Any]:
    request = msgspec.json.decode(body, type=DisconnectRequest)
    if request.disconnect is not None and request.disconnect.code:
        if not 3000 <= request.disconnect.code < 5000:
            raise CommandError(ERROR_BAD_REQUEST)
        await node.disconnect(
            request.user, Disconnect(request.disconnect.code, request.disconnect.reason), client=request.client or None
        )
    else:
        await node.disconnect(request.user, client=request.client or None)
    return {}


async def _refresh(node: Node, body: bytes) -> dict[str, Any]:
    request = msgspec.json.decode(body, type=RefreshRequest)
    await node.refresh(
        request.user, client=request.client or None, expired=request.expired, expire_at=request.expire_at
    )
    return {}


def _presence_channel(node: Node, body: bytes) -> str:
    """The channel of a presence or presence_stats request; 108 when it keeps no presence."""
    request = msgspec.json.decode(body, type=ChannelRequest)
    _check_channel(node, request.channel)
    if not node.channel_options(request.channel).presence:
        raise CommandError(ERROR_NOT_AVAILABLE)
    return request.channel


async def _presence(node: Node, body: bytes) -> dict[str, Any]:
    clients = await node.presence(_presence_channel(node, body))
    return {"presence": {client: _info(info) for client, info in clients.items()}}


async def _presence_stats(node: Node, body: bytes) -> dict[str, Any]:
    stats = await node.presence_stats(_presence_channel(node, body))
    return {"num_clients": stats.num_clients, "num_users": stats.num_users}


async def _history(node: Node, body: bytes) -> dict[str, Any]:
    request = msgspec.json.decode(body, type=HistoryRequest)
    _check_channel(node, request.channel)
    if not node.channel_options(request.channel).history:
        raise CommandError(ERROR_NOT_AVAILABLE)
    limit = node.config.history_limit(request.limit)
    since = None if request.since is None else StreamPosition(request.since.offset, request.since.epoch)
    result = await node.history(request.channel, limit=limit, since=since, reverse=request.reverse)
    return {
        "publications": [_publication(p) for p in result.publications],
        "offset": result.position.offset,
        "epoch": result.position.epoch,
    }


async def _history_remove(node: Node, body: bytes) -> dict[str, Any]:
    request = msgspec.json.decode(body, type=ChannelRequest)
    _check_channel(node, request.channel)
    await node.history_remove(request.channel)
    return {}


async def _channels(node: Node, body: bytes) -> dict[str, Any]:
    import fnmatch

    request = msgspec.json.decode(body or b"{}", type=ChannelsRequest)
    channels = await node.cluster_channels()
    if request.pattern:
        channels = {name: count for name, count in channels.items() if fnmatch.fnmatchcase(name, request.pattern)}
    return {"channels": {name: {"num_clients": count} for name, count in channels.items()}}


async def _info_method(node: Node, body: bytes) -> dict[str, Any]:
    return {"nodes": [msgspec.structs.asdict(info) for info in node.cluster_info()]}


Method = Callable[[Node, bytes], Awaitable[dict[str, Any]]]

API_METHODS: dict[str, Method] = {
    "publish": _publish,
    "broadcast": _broadcast,
    "subscribe": _subscribe,
    "unsubscribe": _unsubscribe,
    "disconnect": _disconnect,
    "refresh": _refresh,
    "presence": _presence,
    "presence_stats": _presence_stats,
    "history": _history,
    "history_remove": _history_remove,
    "channels": _channels,
    "info": _info_method,
}


def _error(error: Error) -> dict[str, Any]:
    return {"code": error.code, "message": error.message}


async def call_api(node: Node, method: str, body: bytes) -> dict[str, Any]:
    """Run one server API method on ``node``; return ``{"result": ...}`` or ``{"error": ...}``.

    The HTTP API and the outbox consumer (:mod:`wavecast.server.pgoutbox`) both run commands here.
    """
    handler = API_METHODS.get(method)
    if handler is None:
        return {"error": _error(ERROR_METHOD_NOT_FOUND)}
    try:
        return {"result": await handler(node, body)}
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        return {"error": {"code": ERROR_BAD_REQUEST.code, "message": f"bad request: {exc}"}}
    except CommandError as exc:
        return {"error": _error(exc.error)}
    except EngineError as exc:
        # Centrifugo's answer, as its API clients expect; what failed goes to the log, not to
        # the caller (it names the Redis server).
        logger.warning("api %s failed: %s", method, exc)
        return {"error": _error(ERROR_INTERNAL)}


async def _batch(node: Node, body: bytes) -> dict[str, Any]:
    """``{"commands": [{"publish": {...}}, ...]}`` gives ``{"replies": [{"publish": {...}}, ...]}``."""
    try:
        commands = msgspec.json.decode(body, type=dict[str, list[dict[str, msgspec.Raw]] | bool])["commands"]
    except (msgspec.DecodeError, msgspec.ValidationError, KeyError) as exc:
        return {"error": {"code": ERROR_BAD_REQUEST.code, "message": f"bad request: {exc}"}}
    if not isinstance(commands, list):
        return {"error": _error(ERROR_BAD_REQUEST)}
    replies: list[dict[str, Any]] = []
    for command in commands:
        if len(command) != 1:
            replies.append({"error": _error(ERROR_BAD_REQUEST)})
            continue
        ((method, params),) = command.items()
        response = await call_api(node, method, bytes(params))
        replies.append({method: response["result"]} if "result" in response else response)
    return {"replies": replies}


async def handle_api(
    node: Node, method: str, body: bytes, headers: Mapping[str, str], *, key: str, insecure: bool = False
) -> ApiResponse:
    """Answer ``POST /api/<method>``; return the HTTP status and the JSON body."""
    if not insecure:
        given = request_api_key(headers)
        if not key or given is None or not hmac.compare_digest(given.encode(), key.encode()):
            return 401, _encode({"error": {"code": 401, "message": "unauthorized"}})
    if method == "batch":
        return 200, _encode(await _batch(node, body))
    if method not in API_METHODS:
        return 404, _encode({"error": _error(ERROR_METHOD_NOT_FOUND)})
    return 200, _encode(await call_api(node, method, body or b"{}"))
