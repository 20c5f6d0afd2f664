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
from .emulation import (
    EMULATION_PATH,
    HTTP_STREAM_PATH,
    SSE_PATH,
    ByteStream,
    Delivery,
    EmulationSessions,
    StreamTransport,
    deliver,
    route,
    serve_stream,
    sse_event,
)
from .node import Node, NodeStats
from .session import Session
from .websocket import WEBSOCKET_PATH, handle_websocket, websocket_server_options

__all__ = [
    "EMULATION_PATH",
    "HTTP_STREAM_PATH",
    "SLOW_CONSUMER_POLICIES",
    "SSE_PATH",
    "WEBSOCKET_PATH",
    "ByteStream",
    "ChannelOptions",
    "ConnectResult",
    "ConnectingContext",
    "Delivery",
    "DisconnectContext",
    "EmulationSessions",
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
    "StreamTransport",
    "SubRefreshContext",
    "SubscribeContext",
    "SubscribeResult",
    "deliver",
    "handle_websocket",
    "route",
    "serve_stream",
    "sse_event",
    "websocket_server_options",
]
