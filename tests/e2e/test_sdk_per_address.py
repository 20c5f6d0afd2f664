"""centrifuge-python and centrifuge-js against ``wavecast serve`` past a per-address limit.

The client's address already holds as many connections as it may: its upgrade gets 429, which
both SDKs take as temporary, retrying after their backoff; once one of the address's
connections closes, the client connects. It is never told to stop.
"""

from __future__ import annotations

import asyncio

import pytest
from centrifuge import ClientState
from websockets.exceptions import InvalidStatus

from ..support.js import StartJS
from ..support.peers import raw_handshake
from ..support.sdk import Clients
from ..support.servers import StartWavecast
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

LIMIT = 3


async def test_a_client_refused_for_its_address_retries_and_connects_once_a_slot_frees(
    start_wavecast: StartWavecast, make_client: Clients
) -> None:
    running = await start_wavecast(per_address={"max_connections": LIMIT})
    held = [await raw_handshake(running.port, "/connection/websocket") for _ in range(LIMIT)]
    try:
        client, events = make_client(running.ws_url, token=make_token("nat"))
        await client.connect()
        await wait_until(lambda: len(events.named("error")) >= 2, timeout=5000 * MS, what="two refused attempts")
        assert client.state == ClientState.CONNECTING
        errors = [ctx.error for ctx in events.named("error")]
        assert all(isinstance(error, InvalidStatus) for error in errors), errors
        assert {error.response.status_code for error in errors} == {429}
        assert errors[0].response.headers["Retry-After"] == "10"
        held.pop().close()
        await wait_until(lambda: client.state == ClientState.CONNECTED, timeout=5000 * MS, what="connected")
        assert running.app.addresses.connections == {"127.0.0.1": LIMIT}
        assert not events.named("disconnected")
    finally:
        for raw in held:
            raw.close()


async def test_centrifuge_js_refused_for_its_address_retries_and_connects_once_a_slot_frees(
    start_wavecast: StartWavecast, start_js: StartJS
) -> None:
    running = await start_wavecast(per_address={"max_connections": LIMIT})
    held = [await raw_handshake(running.port, "/connection/websocket") for _ in range(LIMIT)]
    try:
        js = await start_js(url=running.ws_url, token=make_token("nat"))
        # connect() resolves once the client is connected, within 5 s.
        connecting = asyncio.create_task(js.call("connect"))
        await wait_until(lambda: len(js.named("error")) >= 2, timeout=5000 * MS, what="two refused attempts")
        assert {event["type"] for event in js.named("error")} == {"transport"}
        assert not js.named("connected")
        held.pop().close()
        assert (await connecting)["ok"]
        await js.wait("connected")
        assert not js.named("disconnected")
    finally:
        for raw in held:
            raw.close()
