"""``wavecast serve``'s server: what its configuration sets on the connections it accepts."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from wavecast.codes import DISCONNECT_SLOW

from ..support.memory import kernel_send_queue
from ..support.raw import slow_subscriber
from ..support.servers import StartWavecast
from ..support.tools import require

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


async def test_the_callers_serve_options_win_over_the_configuration(start_wavecast: StartWavecast) -> None:
    # As an example's serve_options set the send buffer that the configuration also sets.
    running = await start_wavecast(serve_options={"socket_send_buffer": 16384}, namespaces=LIVE)
    async with slow_subscriber(running, "live:feed", server_send_buffer=None):
        (connection,) = running.server.connections
        sock = connection.transport.get_extra_info("socket")
        # Linux doubles the value it is given.
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 16384


@pytest.mark.parametrize("backlog", [None, 512], ids=["default", "512"])
async def test_the_listener_has_the_configured_backlog(start_wavecast: StartWavecast, backlog: int | None) -> None:
    running = await start_wavecast(server={} if backlog is None else {"backlog": backlog})
    # ss shows a listener's backlog as its Send-Q; Linux caps it at net.core.somaxconn.
    ss = shutil.which("ss")
    require(ss, "no ss (iproute2)")
    assert ss is not None
    listing = subprocess.run([ss, "-ltnH", f"sport = :{running.port}"], capture_output=True, text=True, check=True)
    somaxconn = int(Path("/proc/sys/net/core/somaxconn").read_text())
    expected = min(running.config.server.backlog, somaxconn)
    assert {int(line.split()[2]) for line in listing.stdout.splitlines()} == {expected}
    assert backlog is not None or running.config.server.backlog == 4096
