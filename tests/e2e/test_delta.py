"""Fossil delta compression with the SDKs over real sockets, on the memory and Redis engines.

The board is published through the HTTP API with ``delta: true``; centrifuge-js (JSON and
protobuf) and centrifuge-python decode every delta against the previous publication they
received and must see exactly the boards that were published, live, after a reconnect with
recovery, and mixed with publications that aren't delta-encoded.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from centrifuge import DeltaType

from ..support.config import API_KEY, RECOVERING
from ..support.js import StartJS
from ..support.sdk import Clients, subscribe
from ..support.servers import AppServer, StartWavecast
from ..support.timing import wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

DELTA_NAMESPACE = {**RECOVERING, "allowed_delta_types": ["fossil"]}
HEADERS = {"X-API-Key": API_KEY}


@pytest.fixture
async def server(start_on_engine: StartWavecast) -> AppServer:
    compacted = {**DELTA_NAMESPACE, "allow_channel_compaction": True}
    return await start_on_engine(namespaces={"board": DELTA_NAMESPACE, "compacted": compacted})


def boards(count: int) -> list[dict[str, Any]]:
    """Successive states of a trading board: each changes a few prices of the one before."""
    board: dict[str, Any] = {
        "rows": [{"symbol": f"SYM{i}", "bid": 100.0 + i, "ask": 100.5 + i, "volume": 1000 * i} for i in range(30)]
    }
    states = []
    for step in range(count):
        board = copy.deepcopy(board)
        row = board["rows"][(step * 7) % 30]
        row["bid"] = round(row["bid"] + 0.25, 2)
        row["volume"] += step
        board["note"] = "café ☕" if step % 3 == 0 else "plain"  # non-ASCII text must survive
        states.append(board)
    return states


async def publish(server: AppServer, data: Any, *, delta: bool = True, channel: str = "board:AAPL") -> None:
    answer = await server.post("/api/publish", {"channel": channel, "data": data, "delta": delta}, HEADERS)
    assert "error" not in answer.json(), answer.json()


@pytest.mark.parametrize("use_protobuf", [False, True], ids=["json", "protobuf"])
@pytest.mark.parametrize("channel", ["board:AAPL", "compacted:AAPL"], ids=["named", "compacted"])
async def test_centrifuge_python_reconstructs_every_board(
    server: AppServer, make_client: Clients, use_protobuf: bool, channel: str
) -> None:
    """In both forms, and with channel compaction, whose pushes name the channel by number."""
    client, _ = await make_client.connected(server.ws_url, "alice", use_protobuf=use_protobuf)
    events = await subscribe(client, channel, delta=DeltaType.FOSSIL)
    sub = client.get_subscription(channel)
    assert sub is not None and sub._delta_negotiated
    states = boards(12)
    for index, state in enumerate(states):
        await publish(server, state, delta=index != 5, channel=channel)  # one full publication in the middle
    await wait_until(lambda: len(events.data) == len(states), what="every board")
    assert [json.loads(data) if use_protobuf else data for data in events.data] == states
    flags = [ctx.pub.delta for ctx in events.named("publication")]
    assert flags[0] is False and flags[5] is False and all(flags[1:5]) and all(flags[6:])


@pytest.mark.parametrize("protobuf", [False, True], ids=["json", "protobuf"])
async def test_centrifuge_js_reconstructs_every_board_and_recovers(
    server: AppServer, start_js: StartJS, protobuf: bool
) -> None:
    js = await start_js(url=server.ws_url, token=make_token("bob"), protobuf=protobuf)
    await js.ok("connect")
    await js.ok("subscribe", channel="board:AAPL", delta="fossil")
    subscribed = await js.wait("subscribed")
    assert subscribed["delta"] is True
    states = boards(8)
    for state in states[:4]:
        await publish(server, state)
    await js.wait("publication", lambda event: _board(event, protobuf) == states[3])
    stats = await js.ok("deltaStats", channel="board:AAPL")
    assert (stats["numFullPayloads"], stats["numDeltaPayloads"]) == (1, 3)
    assert stats["bytesReceived"] < stats["bytesDecoded"]

    # Publications missed while disconnected come back in full; deltas resume after them.
    await js.ok("disconnect")
    for state in states[4:7]:
        await publish(server, state)
    await js.ok("connect")
    await publish(server, states[7])
    await js.wait("publication", lambda event: _board(event, protobuf) == states[7])
    received = [_board(event, protobuf) for event in js.named("publication")]
    assert received == states
    assert (await js.wait("subscribed", lambda event: event["recovered"]))["wasRecovering"]


def _board(event: dict[str, Any], protobuf: bool) -> Any:
    data = event["data"]
    return json.loads(bytes.fromhex(data)) if protobuf else data


async def test_delta_is_not_granted_outside_allowed_namespaces(server: AppServer, make_client: Clients) -> None:
    client, _ = await make_client.connected(server.ws_url, "carol")
    events = await subscribe(client, "news:x", delta=DeltaType.FOSSIL)
    sub = client.get_subscription("news:x")
    assert sub is not None and not sub._delta_negotiated
    answer = await server.post("/api/publish", {"channel": "news:x", "data": {"a": 1}, "delta": True}, HEADERS)
    assert "error" not in answer.json()
    await wait_until(lambda: events.data == [{"a": 1}], what="a plain publication")


async def test_history_is_never_delta_encoded(server: AppServer, make_client: Clients) -> None:
    client, _ = await make_client.connected(server.ws_url, "dave")
    events = await subscribe(client, "board:AAPL", delta=DeltaType.FOSSIL)
    states = boards(3)
    for state in states:
        await publish(server, state)
    await wait_until(lambda: len(events.data) == 3, what="three boards")
    answer = await server.post("/api/history", {"channel": "board:AAPL", "limit": 10}, HEADERS)
    assert [pub["data"] for pub in answer.json()["result"]["publications"]] == states
