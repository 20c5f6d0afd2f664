"""The publisher of the channel benchmarks' servers (``wavecast_channels.py``,
``wavecast_serve_channels.py``): each text message of a WebSocket is published with
:meth:`Node.publish`."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import wavecast
from wavecast.realtime import Node


async def publish_feed(
    node: Node, connection: wavecast.ServerConnection, channels: Sequence[str], tags: dict[str, str] | None = None
) -> None:
    """Publish each message of ``connection`` to ``channels``, until it closes.

    A feed that doesn't wait for each publication before the next: they are published in
    order, and the Redis engine sends those made meanwhile in one round trip.
    """
    pending: set[asyncio.Future[Any]] = set()
    async for message in connection:
        text = message if isinstance(message, str) else message.decode()
        for channel in channels:
            future = asyncio.ensure_future(node.publish(channel, text, tags=tags))
            pending.add(future)
            future.add_done_callback(pending.discard)
        if len(pending) >= 256:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    if pending:
        await asyncio.wait(pending)
