"""centrifuge-js's protobuf build (``centrifuge/build/protobuf``) on Node, with the ``ws``
package, against a Node over real sockets: Uint8Array data both ways.

``js/client.js`` runs with ``protobuf: true``; data goes to and comes from it as hex.
"""

from __future__ import annotations

import pytest

from wavecast.codes import DISCONNECT_FORCE_RECONNECT

from ..support.config import node_config, open_channel
from ..support.js import StartJS
from ..support.rpc import with_rpc
from ..support.servers import StartNode
from ..support.timing import wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

CHANNELS = open_channel(presence=True, force_recovery=True)

#: A Yjs-like update: bytes that aren't JSON.
UPDATE = bytes([0, 1, 0x9F, 0xC3, 0, 0xFF]) + bytes(range(200))


# SSE carries text only: centrifuge-js's protobuf build falls back to HTTP-streaming alone.
@pytest.mark.parametrize("transport", ["websocket", "http_stream"])
async def test_connect_subscribe_publish_uint8array_and_rpc(
    start_node: StartNode, start_js: StartJS, transport: str
) -> None:
    running = await start_node(node_config(channel=CHANNELS), setup=with_rpc("reverse"))
    endpoint = running.endpoint(transport)
    js = await start_js(**endpoint, token=make_token("ann", info={"name": "Ann"}), protobuf=True)
    other = await start_js(**endpoint, token=make_token("bob"), protobuf=True)
    for client in (js, other):
        await client.ok("connect")
    connected = await js.wait("connected")
    session = running.node.hub.session(connected["client"])
    assert session is not None and session.codec.name == "protobuf" and session.user == "ann"

    for client in (js, other):
        await client.ok("subscribe", channel="doc")
    subscribed = await js.wait("subscribed")
    assert subscribed["recoverable"] and subscribed["positioned"]

    await js.ok("publish", channel="doc", data=UPDATE.hex())
    await running.node.publish("doc", b"\x02from the server")
    for client in (js, other):
        await wait_until(lambda client=client: len(client.named("publication")) == 2, what="two publications")  # type: ignore[misc]
        first, second = client.named("publication")
        assert (bytes.fromhex(first["data"]), first["offset"], first["user"]) == (UPDATE, 1, "ann")
        assert (bytes.fromhex(second["data"]), second["offset"]) == (b"\x02from the server", 2)

    presence = await js.ok("presence", channel="doc")
    assert {info["user"] for info in presence["clients"].values()} == {"ann", "bob"}
    assert bytes.fromhex(presence["clients"][connected["client"]]["connInfo"]) == b'{"name":"Ann"}'
    history = await other.ok("history", channel="doc", limit=10)
    assert [bytes.fromhex(p["data"]) for p in history["publications"]] == [UPDATE, b"\x02from the server"]

    assert await js.ok("rpc", method="reverse", data=UPDATE.hex()) == {"data": UPDATE[::-1].hex()}
    missing = await js.call("rpc", method="missing", data="00")
    assert missing["error"]["code"] == 104
    assert len(js.named("connected")) == 1
    assert not js.named("error") and not js.named("sub_error")

    # The SDK keeps the offsets it read (64-bit fields) and sends them back to recover.
    await running.node.disconnect("bob", DISCONNECT_FORCE_RECONNECT)
    await running.node.publish("doc", b"\x03while away")
    resubscribed = await other.wait("subscribed", lambda event: event["wasRecovering"])
    assert resubscribed["recovered"]
    await wait_until(lambda: len(other.named("publication")) == 3, what="the missed publication")
    assert bytes.fromhex(other.named("publication")[2]["data"]) == b"\x03while away"
