"""The application's hooks on a node: set as attributes, or with the decorators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from .contexts import (
    OnConnecting,
    OnDisconnect,
    OnMessage,
    OnPublish,
    OnRefresh,
    OnSubRefresh,
    OnSubscribe,
    RPCHandler,
)

__all__ = ["Hooks"]

F = TypeVar("F", bound=Callable[..., Any])
H = TypeVar("H")


class _Setter(Generic[H]):
    """A decorator that sets one hook: ``@node.connecting`` sets ``node.on_connecting``."""

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    @overload
    def __get__(self, hooks: None, owner: type) -> _Setter[H]: ...
    @overload
    def __get__(self, hooks: Hooks, owner: type) -> Callable[[H], H]: ...
    def __get__(self, hooks: Hooks | None, owner: type) -> _Setter[H] | Callable[[H], H]:
        if hooks is None:
            return self

        def set_hook(hook: H) -> H:
            setattr(hooks, self.attribute, hook)
            return hook

        return set_hook


class Hooks:
    """The hooks a node calls; each is ``None`` until the application sets it.

    ``on_connecting``, ``on_subscribe``, ``on_publish``, ``on_rpc`` (for methods without
    a handler of their own), ``on_message``, ``on_disconnect``, and ``on_refresh`` and
    ``on_sub_refresh`` (the server refreshes what expires); the decorators ``connecting``,
    ``subscribing``, ``publishing``, ``message``, ``disconnected``, ``refreshing`` and
    ``sub_refreshing`` set them, and ``@node.rpc("method")`` registers an RPC handler.
    """

    connecting = _Setter[OnConnecting]("on_connecting")
    subscribing = _Setter[OnSubscribe]("on_subscribe")
    publishing = _Setter[OnPublish]("on_publish")
    message = _Setter[OnMessage]("on_message")
    disconnected = _Setter[OnDisconnect]("on_disconnect")
    refreshing = _Setter[OnRefresh]("on_refresh")
    sub_refreshing = _Setter[OnSubRefresh]("on_sub_refresh")

    def __init__(self) -> None:
        self.on_connecting: OnConnecting | None = None
        self.on_subscribe: OnSubscribe | None = None
        self.on_publish: OnPublish | None = None
        self.on_rpc: RPCHandler | None = None
        self.on_message: OnMessage | None = None
        self.on_disconnect: OnDisconnect | None = None
        self.on_refresh: OnRefresh | None = None
        self.on_sub_refresh: OnSubRefresh | None = None
        self.rpc_handlers: dict[str, RPCHandler] = {}

    @property
    def hooks_after_connect(self) -> bool:
        """Whether a hook that runs after a client's connect is set: it may read the session's
        :attr:`~wavecast.realtime.Session.request`, which sessions otherwise drop then."""
        return bool(self.rpc_handlers) or any(
            hook is not None
            for hook in (
                self.on_subscribe,
                self.on_publish,
                self.on_rpc,
                self.on_message,
                self.on_disconnect,
                self.on_refresh,
                self.on_sub_refresh,
            )
        )

    def rpc(self, method: str) -> Callable[[F], F]:
        """Register the decorated coroutine function as the handler of RPC ``method``."""

        def register(handler: F) -> F:
            self.rpc_handlers[method] = handler
            return handler

        return register
