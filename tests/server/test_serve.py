"""``wavecast serve``'s server: what its configuration sets on the connections it accepts."""

from __future__ import annotations

import asyncio

import pytest

from wavecast.codes import DISCONNECT_SLOW

from ..support.memory import kernel_send_queue
from ..support.raw import slow_subscriber
from ..support.servers import StartWavecast

LIVE = {"live": {"allow_subscribe_for_client": True}}


@pytest.mark.parametrize("websocket", [{}, {"socket_send_buffer": 32768}], ids=["default", "32 KiB"])
async def test_a_client_that_stops_reading_pins_at_most_the_socket_send_buffer(
    start_wavecast: StartWavecast, websocket: dict[str, int]
) -> None:
    running = await start_wavecast(websocket={"compression": False, **websocket}, namespaces=LIVE)
    send_buffer = running.config.websocket.socket_send_buffer
    assert send_buffer is not None
    # Linux doubles the value; with its own sizing, it held 2.7 MiB here.
    bound = 2 * send_buffer
    pinned = 0
    async with slow_subscriber(running, "live:feed", server_send_buffer=None) as (_, session):
        (connection,) = running.server.connections
        sock = connection.transport.get_extra_info("socket")
        payload = "x" * 16000
        for n in range(1000):
            if session.closed:
                break
            await running.node.publish("live:feed", {"n": n, "payload": payload})
            await asyncio.sleep(0.001)
            pinned = max(pinned, kernel_send_queue(sock))
        # The client's queue filled up behind the kernel's buffer: its policy applied.
        assert session.disconnect_reason == DISCONNECT_SLOW
    assert 0 < pinned <= bound
