"""presence: the presence of local subscribers, refreshed before it expires, and the subscriptions that
expire with the refresh."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ..support.timing import MS, wait_until
from .helpers import ConnectClient, MakeNode


async def test_presence_is_refreshed(make_node: MakeNode, connect: ConnectClient) -> None:
    node = await make_node(presence_ttl=250 * MS, presence_update_interval=10 * MS)
    client = await connect(node, subscribe="chat:1")
    await client.result("subscribe", {"channel": "news"})  # no presence to refresh there
    await asyncio.sleep(400 * MS)  # longer than presence_ttl
    assert list(await node.presence("chat:1")) == [client.session.client]


async def test_a_failing_presence_refresh_is_logged(
    make_node: MakeNode, connect: ConnectClient, caplog: pytest.LogCaptureFixture
) -> None:
    node = await make_node(presence_ttl=1.0, presence_update_interval=5 * MS)
    await connect(node, subscribe="chat:1")

    async def broken_add(*args: object, **kwargs: object) -> None:
        raise RuntimeError("engine down")

    node.presence_manager.add_presence = broken_add  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING, logger="wavecast.realtime"):
        await wait_until(lambda: "presence refresh failed" in caplog.text, what="the log")


async def test_expired_subscriptions_end_with_the_presence_update(make_node: MakeNode, connect: ConnectClient) -> None:
    import time

    node = await make_node(presence_ttl=1.0, presence_update_interval=5 * MS, client_expired_close_delay=1 * MS)
    client = await connect(node, subscribe=["news", "chat:1"])
    client.session.subscriptions["news"].expire_at = int(time.time()) - 1
    await wait_until(lambda: client.session.closed, what="the expiry")
    assert client.closed_with == 3006
