"""The event proxies as the node's hooks: each hook asks the application's backend over HTTP.

The commands know nothing of HTTP: a proxy is one more implementation of
:class:`~wavecast.realtime.hooks.Hooks`. What the client gets when the backend fails follows
Centrifugo (``internal/proxy/*_handler.go``): a backend that is down, slow past its
timeout, or answers other than 200 or with garbage gives connect, subscribe, publish and
RPC error 100 (internal, temporary: the SDKs retry), and gives refresh and sub_refresh one
more minute before asking again. An ``error`` answer is the client's error, a ``disconnect``
answer disconnects it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from ...codes import ERROR_INTERNAL, ERROR_METHOD_NOT_FOUND, ERROR_NOT_AVAILABLE, ERROR_PERMISSION_DENIED
from ...exceptions import CommandError
from ...protocol.events import Request
from ...realtime.config import ChannelOptions
from ...realtime.contexts import (
    ConnectingContext,
    ConnectResult,
    PublishContext,
    PublishResult,
    RefreshContext,
    RefreshResult,
    RPCContext,
    SubRefreshContext,
    SubscribeContext,
    SubscribeResult,
)
from ...realtime.node import Node
from ...realtime.session import Session
from ..config import Config, ProxyEndpoint
from .caller import HttpCaller, ProxyCallError
from .wire import (
    ConnectReply,
    ProxyAnswerError,
    PublishReply,
    RefreshReply,
    RPCReply,
    SubscribeReply,
    decode_reply,
    encode_request,
    reply_bytes,
)

__all__ = ["EventProxies"]

logger = logging.getLogger("wavecast.server")

R = TypeVar("R", ConnectReply, RefreshReply, SubscribeReply, PublishReply, RPCReply)
T = TypeVar("T")

_CHANNEL_KINDS = ("subscribe", "publish", "sub_refresh")


def _forwarded(proxy: ProxyEndpoint, request: Request | None) -> dict[str, str]:
    """The headers of a proxy request: the static ones, then those of the client's upgrade
    request that ``http_headers`` names, then the content type (Centrifugo's ``requestHeaders``)."""
    headers = dict(proxy.static_http_headers)
    if request is not None and proxy.http_headers:
        allowed = {name.lower() for name in proxy.http_headers}
        values: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            if name.lower() in allowed:
                values.setdefault(name, []).append(value)
        for name, found in values.items():
            headers[name] = ("; " if name.lower() == "cookie" else ", ").join(found)
    headers["Content-Type"] = "application/json"
    return headers


def _result(make: Callable[[], T], kind: str) -> T:
    """Build a hook's result from an answer, whose ``info`` must be JSON."""
    try:
        return make()
    except ValueError as exc:
        raise ProxyAnswerError(f"{kind} result: {exc}") from exc


class EventProxies:
    """The proxies of a configuration; :meth:`install` sets them as a node's hooks.

    Args:
        config: the server's configuration: ``[proxy]``, ``[proxies.*]``, ``[rpc]`` and the
            namespaces' ``*_proxy_*`` options.
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        section = config.proxy
        self.caller = HttpCaller(max_connections=section.max_connections, max_response_size=section.max_response_size)

    def _named(self, kind: str, name: str) -> ProxyEndpoint:
        proxy: ProxyEndpoint = getattr(self.config.proxy, kind) if name == "default" else self.config.proxies[name]
        return proxy

    def _channel_options(self) -> list[ChannelOptions]:
        return [self.config.channel, *self.config.namespaces.values()]

    def install(self, node: Node) -> bool:
        """Set the hooks of the proxies that are configured, where the application set none
        in Python; return whether any is set."""
        section, rpc = self.config.proxy, self.config.rpc
        hooks: dict[str, Any] = {
            "on_connecting": self.connect if section.connect.endpoint else None,
            "on_refresh": self.refresh if section.refresh.endpoint else None,
            "on_rpc": self.rpc
            if rpc.without_namespace.proxy_enabled or any(o.proxy_enabled for o in rpc.namespaces.values())
            else None,
        }
        for kind in _CHANNEL_KINDS:
            enabled = any(getattr(options, f"{kind}_proxy_enabled") for options in self._channel_options())
            hooks[f"on_{kind}"] = getattr(self, kind) if enabled else None
        installed = False
        for name, hook in hooks.items():
            if hook is not None and getattr(node, name) is None:
                setattr(node, name, hook)
                installed = True
        return installed

    async def aclose(self) -> None:
        await self.caller.aclose()

    async def _ask(
        self,
        kind: str,
        proxy: ProxyEndpoint,
        reply: type[R],
        *,
        client: str,
        request: Request | None,
        session: Session | None,
        protocol: str,
        **fields: Any,
    ) -> R | None:
        """Send one request; return the answer's result.

        Raises:
            CommandError: the answer is an error, or 100 when the backend failed.
            DisconnectError: the answer is a disconnect.
            ProxyCallError, ProxyAnswerError: only from refresh and sub_refresh, which retry.
        """
        try:
            body = encode_request(
                client=client,
                transport="websocket",
                protocol=protocol,
                binary=proxy.binary_encoding,
                meta=session.meta if session is not None and proxy.include_connection_meta else None,
                **fields,
            )
            answer = await self.caller.post(proxy.endpoint, body, _forwarded(proxy, request), proxy.timeout)
            return decode_reply(answer, reply)
        except (ProxyCallError, ProxyAnswerError) as exc:
            logger.error("%s proxy %s for client %s: %s", kind, proxy.endpoint, client, exc)
            if kind in ("refresh", "sub_refresh"):
                raise
            raise CommandError(ERROR_INTERNAL) from exc

    def _session_fields(self, session: Session) -> dict[str, Any]:
        return {
            "client": session.client,
            "request": session.request,
            "session": session,
            "protocol": "protobuf" if session.codec.binary else "json",
            "user": session.user,
        }

    # --- the hooks -------------------------------------------------------------------------

    async def connect(self, ctx: ConnectingContext) -> ConnectResult | None:
        """The connect proxy; a client that sent a valid token isn't asked about, as in Centrifugo."""
        if ctx.token_user is not None:
            return None
        reply = await self._ask(
            "connect",
            self.config.proxy.connect,
            ConnectReply,
            client=ctx.client,
            request=ctx.request,
            session=None,
            protocol=ctx.protocol,
            name=ctx.name,
            version=ctx.version,
            data=ctx.data,
        )
        if reply is None:
            return None
        return _result(
            lambda: ConnectResult(
                user=reply.user,
                info=reply_bytes(reply.info, reply.b64info, "info"),
                expire_at=reply.expire_at,
                channels=reply.channels,
                data=reply_bytes(reply.data, reply.b64data, "data"),
                meta=reply_bytes(reply.meta, "", "meta"),
            ),
            "connect",
        )

    async def refresh(self, ctx: RefreshContext) -> RefreshResult:
        """The refresh proxy; an answer without a result (an error) ends the connection."""
        fields = self._session_fields(ctx.session)
        try:
            reply = await self._ask("refresh", self.config.proxy.refresh, RefreshReply, **fields)
        except CommandError:
            reply = None
        return self._refreshed(reply, "refresh")

    async def sub_refresh(self, ctx: SubRefreshContext) -> RefreshResult:
        """The sub_refresh proxy of the channel's namespace; a subscription in a namespace
        without one ends when it expires (the client subscribes again with a new token)."""
        options = ctx.session.node.config.channel_options(ctx.channel)
        if options is None or not options.sub_refresh_proxy_enabled:
            return RefreshResult(expired=True)
        proxy = self._named("sub_refresh", options.sub_refresh_proxy_name)
        fields = self._session_fields(ctx.session)
        try:
            reply = await self._ask("sub_refresh", proxy, RefreshReply, channel=ctx.channel, **fields)
        except CommandError:
            reply = None
        return self._refreshed(reply, "sub_refresh")

    @staticmethod
    def _refreshed(reply: RefreshReply | None, kind: str) -> RefreshResult:
        if reply is None:
            return RefreshResult(expired=True)
        return _result(
            lambda: RefreshResult(
                expired=reply.expired,
                expire_at=reply.expire_at,
                info=reply_bytes(reply.info, reply.b64info, "info"),
            ),
            kind,
        )

    async def subscribe(self, ctx: SubscribeContext) -> SubscribeResult | None:
        """The subscribe proxy of the channel's namespace; other namespaces keep their options."""
        options = ctx.session.node.config.channel_options(ctx.channel)
        if options is None or not options.subscribe_proxy_enabled:
            if not ctx.allowed_by_options():
                raise CommandError(ERROR_PERMISSION_DENIED)
            return None
        proxy = self._named("subscribe", options.subscribe_proxy_name)
        fields = self._session_fields(ctx.session)
        reply = await self._ask("subscribe", proxy, SubscribeReply, channel=ctx.channel, data=ctx.data, **fields)
        if reply is None:
            return SubscribeResult()
        return _result(
            lambda: SubscribeResult(
                info=reply_bytes(reply.info, reply.b64info, "info"),
                expire_at=reply.expire_at,
                data=reply_bytes(reply.data, reply.b64data, "data"),
            ),
            "subscribe",
        )

    async def publish(self, ctx: PublishContext) -> PublishResult | None:
        """The publish proxy of the channel's namespace; other namespaces keep their options."""
        options = ctx.session.node.config.channel_options(ctx.channel)
        if options is None or not options.publish_proxy_enabled:
            if not ctx.allowed_by_options():
                raise CommandError(ERROR_PERMISSION_DENIED)
            return None
        proxy = self._named("publish", options.publish_proxy_name)
        fields = self._session_fields(ctx.session)
        reply = await self._ask("publish", proxy, PublishReply, channel=ctx.channel, data=ctx.data, **fields)
        if reply is None:
            return None
        return PublishResult(data=reply_bytes(reply.data, reply.b64data, "data"), tags=reply.tags)

    async def rpc(self, ctx: RPCContext) -> bytes | None:
        """The RPC proxy of the method's namespace (``ns:method``), for methods that no
        Python handler takes: 104 for an unknown namespace, 108 for one without a proxy."""
        rpc = self.config.rpc
        namespace, sep, _ = ctx.method.partition(":")
        options = rpc.namespaces.get(namespace) if sep else rpc.without_namespace
        if options is None:
            raise CommandError(ERROR_METHOD_NOT_FOUND)
        if not options.proxy_enabled:
            raise CommandError(ERROR_NOT_AVAILABLE)
        proxy = self._named("rpc", options.proxy_name)
        fields = self._session_fields(ctx.session)
        reply = await self._ask("rpc", proxy, RPCReply, method=ctx.method, data=ctx.data, **fields)
        if reply is None:
            return None
        return reply_bytes(reply.data, reply.b64data, "data")
