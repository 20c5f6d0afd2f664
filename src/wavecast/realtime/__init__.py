"""The real-time layer: channels, presence, history with recovery, RPC and JWT auth, on the
Centrifugo client protocol v2, so that Centrifugo's SDKs connect unchanged."""

from __future__ import annotations

from .config import SLOW_CONSUMER_POLICIES, ChannelOptions, NodeConfig, SlowConsumerPolicy
from .contexts import (
    ConnectingContext,
    ConnectResult,
    DisconnectContext,
    MessageContext,
    PublishContext,
    PublishResult,
    RefreshContext,
    RefreshResult,
    RPCContext,
    SubRefreshContext,
    SubscribeContext,
    SubscribeResult,
)
from .node import Node, NodeStats
from .session import Session
from .websocket import WEBSOCKET_PATH, handle_websocket, websocket_server_options

__all__ = [
    "SLOW_CONSUMER_POLICIES",
    "WEBSOCKET_PATH",
    "ChannelOptions",
    "ConnectResult",
    "ConnectingContext",
    "DisconnectContext",
    "MessageContext",
    "Node",
    "NodeConfig",
    "NodeStats",
    "PublishContext",
    "PublishResult",
    "RPCContext",
    "RefreshContext",
    "RefreshResult",
    "Session",
    "SlowConsumerPolicy",
    "SubRefreshContext",
    "SubscribeContext",
    "SubscribeResult",
    "handle_websocket",
    "websocket_server_options",
]
