"""centrifuge-python and centrifuge-js against ``wavecast serve`` in a reconnect storm: node-wide admission.

A few hundred clients connect at once to a node whose admission rates are low. The excess
gets 503 at the upgrade or error 111 (temporary) to its connect; each SDK client retries
after its backoff with jitter, and all end up connected: none is refused for good. Meanwhile
``/ready`` says the node is overloaded, and ``/metrics`` counts the refusals.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from centrifuge import ClientState, ReplyError
from websockets.exceptions import InvalidStatus

from ..support.http import scrape_metrics
from ..support.js import StartJS
from ..support.sdk import Clients
from ..support.servers import StartWavecast
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

CLIENTS = 200

ADMISSION = {
    "admission_connection_rate": 400,
    "admission_connection_burst": 50,
    "admission_connect_rate": 200,
    "admission_connect_burst": 30,
}


async def test_a_storm_is_admitted_at_the_nodes_rate_and_every_client_ends_up_connected(
    start_wavecast: StartWavecast, make_client: Clients
) -> None:
    running = await start_wavecast(client=ADMISSION)
    readiness: list[tuple[int, str]] = []
    done = asyncio.Event()

    async def poll_ready() -> None:
        while not done.is_set():
            answer = await running.get("/ready")
            readiness.append((answer.status, answer.json()["status"]))
            await asyncio.sleep(20 * MS)

    poller = asyncio.create_task(poll_ready())
    clients = [
        make_client(running.ws_url, token=make_token(f"user{n}"), min_reconnect_delay=0.1, max_reconnect_delay=1.0)
        for n in range(CLIENTS)
    ]
    await asyncio.gather(*(client.connect() for client, _ in clients))
    try:
        await wait_until(
            lambda: all(client.state == ClientState.CONNECTED for client, _ in clients),
            timeout=30_000 * MS,
            what="every client connected",
        )
    finally:
        done.set()
        await poller

    refused = running.node.admission.refused
    assert refused["connection"] > 0 and refused["connect"] > 0, refused
    assert running.node.hub.num_sessions == CLIENTS
    errors = [ctx.error for _, events in clients for ctx in events.named("error")]
    upgrades = [e for e in errors if isinstance(e, InvalidStatus)]
    connects = [e for e in errors if isinstance(e, ReplyError)]
    # Every refusal the server counted reached a client as one of the two, and nothing else failed.
    assert len(upgrades) + len(connects) == len(errors)
    assert {e.response.status_code for e in upgrades} == {503}
    assert {(e.code, e.temporary) for e in connects} == {(111, True)}
    assert len(upgrades) == refused["connection"] and len(connects) == refused["connect"]
    # No client was told to stop: none was ever disconnected.
    assert not any(events.named("disconnected") for _, events in clients)

    assert (503, "overloaded") in readiness
    metrics = await scrape_metrics(running.url)
    assert metrics.value("wavecast_admission_refused_total", kind="connection") == refused["connection"]
    assert metrics.value("wavecast_admission_refused_total", kind="connect") == refused["connect"]
    # The storm over, the node is ready again and /health never changed.
    await wait_until(
        lambda: not running.node.admission.overloaded(time.monotonic()),
        timeout=3000 * MS,
        what="the end of the overload",
    )
    assert (await running.get("/ready")).status == 200
    assert (await running.get("/health")).status == 200


async def test_centrifuge_js_retries_both_refusals_after_its_backoff(
    start_wavecast: StartWavecast, start_js: StartJS
) -> None:
    # Four upgrades a second, and two connects: with both buckets spent, the client's first
    # upgrade gets 503 and its first connect once upgraded gets 111.
    running = await start_wavecast(
        client={
            "admission_connection_rate": 4,
            "admission_connection_burst": 1,
            "admission_connect_rate": 2,
            "admission_connect_burst": 1,
        }
    )
    admission = running.node.admission
    assert admission.admit_connection(time.monotonic()) and admission.admit_connect(time.monotonic())
    js = await start_js(url=running.ws_url, token=make_token("storm"))
    await js.ok("connect")
    await js.wait("connected", timeout=10_000 * MS)
    errors = js.named("error")
    # centrifuge-js reports the refused upgrade as its transport closing, then the temporary
    # connect error, and reconnects after each: it never goes to the disconnected state.
    assert {"type": "transport", "code": 2} in [{"type": e["type"], "code": e["error"]["code"]} for e in errors]
    assert {"type": "connect", "code": 111} in [{"type": e["type"], "code": e["error"]["code"]} for e in errors]
    assert admission.refused["connection"] >= 1 and admission.refused["connect"] >= 1
    assert not js.named("disconnected")
