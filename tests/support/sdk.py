"""centrifuge-python, the Centrifugo SDK for Python, as the tests drive it: clients that
reconnect and resubscribe quickly, and handlers that record every event."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from centrifuge import (
    Client,
    ClientEventHandler,
    ClientState,
    ConnectedContext,
    ConnectingContext,
    DisconnectedContext,
    ErrorContext,
    JoinContext,
    LeaveContext,
    PublicationContext,
    ServerJoinContext,
    ServerLeaveContext,
    ServerPublicationContext,
    ServerSubscribedContext,
    ServerSubscribingContext,
    ServerUnsubscribedContext,
    SubscribedContext,
    SubscribingContext,
    SubscriptionErrorContext,
    SubscriptionEventHandler,
    SubscriptionState,
    UnsubscribedContext,
)

from .timing import MS, TIMEOUT_FACTOR
from .tokens import make_token

__all__ = ["ClientEvents", "Clients", "EventLog", "SubEvents", "start_subscription", "subscribe", "subscribe_refused"]


class EventLog:
    """Records SDK events as ``(name, context)`` and waits for them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Event()

    def record(self, name: str, ctx: Any) -> None:
        self.events.append((name, ctx))
        self._changed.set()

    def named(self, name: str) -> list[Any]:
        return [ctx for event, ctx in self.events if event == name]

    async def wait(
        self, name: str, predicate: Callable[[Any], bool] = lambda ctx: True, *, timeout: float = 5000 * MS
    ) -> Any:
        """Return the first event ``name`` whose context satisfies ``predicate``, waiting for it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for event, ctx in self.events:
                        if event == name and predicate(ctx):
                            return ctx
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            seen = [event for event, _ in self.events]
            raise AssertionError(f"timed out waiting for {name}; events: {seen}") from None


class ClientEvents(ClientEventHandler, EventLog):
    """Every client event, recorded: ``connecting``, ``connected``, ``disconnected``, ``error``,
    and those of server-side subscriptions (``subscribed``, ``publication``...)."""

    def __init__(self) -> None:
        EventLog.__init__(self)

    async def on_connecting(self, ctx: ConnectingContext) -> None:
        self.record("connecting", ctx)

    async def on_connected(self, ctx: ConnectedContext) -> None:
        self.record("connected", ctx)

    async def on_disconnected(self, ctx: DisconnectedContext) -> None:
        self.record("disconnected", ctx)

    async def on_error(self, ctx: ErrorContext) -> None:
        self.record("error", ctx)

    async def on_subscribed(self, ctx: ServerSubscribedContext) -> None:
        self.record("subscribed", ctx)

    async def on_subscribing(self, ctx: ServerSubscribingContext) -> None:
        self.record("subscribing", ctx)

    async def on_unsubscribed(self, ctx: ServerUnsubscribedContext) -> None:
        self.record("unsubscribed", ctx)

    async def on_publication(self, ctx: ServerPublicationContext) -> None:
        self.record("publication", ctx)

    async def on_join(self, ctx: ServerJoinContext) -> None:
        self.record("join", ctx)

    async def on_leave(self, ctx: ServerLeaveContext) -> None:
        self.record("leave", ctx)


class SubEvents(SubscriptionEventHandler, EventLog):
    """Every subscription event, recorded; :attr:`data` lists the publications' data in order."""

    def __init__(self) -> None:
        EventLog.__init__(self)

    @property
    def data(self) -> list[Any]:
        return [ctx.pub.data for ctx in self.named("publication")]

    async def on_subscribing(self, ctx: SubscribingContext) -> None:
        self.record("subscribing", ctx)

    async def on_subscribed(self, ctx: SubscribedContext) -> None:
        self.record("subscribed", ctx)

    async def on_unsubscribed(self, ctx: UnsubscribedContext) -> None:
        self.record("unsubscribed", ctx)

    async def on_publication(self, ctx: PublicationContext) -> None:
        self.record("publication", ctx)

    async def on_join(self, ctx: JoinContext) -> None:
        self.record("join", ctx)

    async def on_leave(self, ctx: LeaveContext) -> None:
        self.record("leave", ctx)

    async def on_error(self, ctx: SubscriptionErrorContext) -> None:
        self.record("error", ctx)


class Clients:
    """Creates centrifuge-python clients and disconnects them in :meth:`aclose`.

    ``clients(url, token=..., get_token=..., **kwargs)`` returns a client, not connected yet,
    and its :class:`ClientEvents`. Reconnect delays are short, and no proxy is used. As an
    async context manager, it disconnects them on the way out.
    """

    def __init__(self) -> None:
        self.clients: list[Client] = []

    def __call__(self, url: str, **kwargs: Any) -> tuple[Client, ClientEvents]:
        events = ClientEvents()
        kwargs.setdefault("min_reconnect_delay", 0.05)
        kwargs.setdefault("max_reconnect_delay", 0.2)
        kwargs.setdefault("timeout", 5.0 * TIMEOUT_FACTOR)
        client = Client(url, events=events, proxy=None, **kwargs)
        self.clients.append(client)
        return client, events

    async def connected(self, url: str, user: str = "42", **kwargs: Any) -> tuple[Client, ClientEvents]:
        """Return a client connected as ``user``, with a token of :func:`make_token` unless
        ``token`` or ``get_token`` is given."""
        if "token" not in kwargs and "get_token" not in kwargs:
            kwargs["token"] = make_token(user)
        client, events = self(url, **kwargs)
        await client.connect()
        return client, events

    async def __aenter__(self) -> Clients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for client in self.clients:
            if client.state != ClientState.DISCONNECTED:
                await client.disconnect()
        # Let the SDK's background tasks (closing transports) finish before the loop ends.
        await asyncio.sleep(20 * MS)
        for client in self.clients:
            tasks = list(client._background_tasks)
            if tasks:
                await asyncio.wait(tasks, timeout=2000 * MS)


async def start_subscription(client: Client, channel: str, **kwargs: Any) -> SubEvents:
    """Start subscribing ``client`` to ``channel`` without waiting; resubscribe quickly."""
    events = SubEvents()
    kwargs.setdefault("min_resubscribe_delay", 0.05)
    kwargs.setdefault("max_resubscribe_delay", 0.5)
    sub = client.new_subscription(channel, events, **kwargs)
    await sub.subscribe()
    return events


async def subscribe(client: Client, channel: str, *, timeout: float = 10_000 * MS, **kwargs: Any) -> SubEvents:
    """Subscribe ``client`` (connected or connecting) to ``channel``; wait until subscribed."""
    events = await start_subscription(client, channel, **kwargs)
    await events.wait("subscribed", timeout=timeout)
    return events


async def subscribe_refused(client: Client, channel: str, **kwargs: Any) -> UnsubscribedContext:
    """Subscribe ``client`` to ``channel``, which the server refuses; return how it unsubscribed
    (``code`` and ``reason`` are the error's)."""
    events = SubEvents()
    sub = client.new_subscription(channel, events, **kwargs)
    await sub.subscribe()
    unsubscribed: UnsubscribedContext = await events.wait("unsubscribed")
    assert sub.state == SubscriptionState.UNSUBSCRIBED
    return unsubscribed
