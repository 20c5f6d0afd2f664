"""Publication data that a JSON client couldn't read, from a protobuf client or a hook, with
centrifuge-python and centrifuge-js in both codecs.

JSON clients read newline-delimited frames: JSON data with a raw newline inside reaches them
compacted onto one line, in live delivery, history and recovery alike. Bytes that aren't
strictly UTF-8 JSON are binary: protobuf clients receive them, a JSON client is told once
with 3506 that it can't, and no one else of the channel misses anything.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from centrifuge import ClientState

from wavecast.codes import DISCONNECT_FORCE_RECONNECT
from wavecast.realtime import Node, PublishContext, PublishResult

from ..support.config import node_config, open_channel
from ..support.js import StartJS
from ..support.sdk import Clients, subscribe
from ..support.servers import StartNode
from ..support.timing import MS, wait_until
from ..support.tokens import make_token

pytestmark = pytest.mark.interop

CHANNELS = open_channel(force_recovery=True)

#: JSON that a strict reader takes, with raw newlines where JSON allows whitespace.
SPREAD = [b'{"a":\n 1}', b"[1,\r\n2]\n", b'"line\\nbreak"']
#: How JSON clients read them.
VALUES = [{"a": 1}, [1, 2], "line\nbreak"]


def _hook(node: Node) -> None:
    @node.publishing
    async def rewrite(ctx: PublishContext) -> PublishResult | None:
        # An application that pretty-prints what it publishes.
        if ctx.channel == "pretty":
            return PublishResult(data=json.dumps(json.loads(ctx.data), indent=2).encode())
        return None


async def test_json_with_raw_newlines_reaches_json_clients_on_one_line(
    start_node: StartNode, make_client: Clients, start_js: StartJS
) -> None:
    running = await start_node(node_config(channel=CHANNELS), setup=_hook)
    publisher, _ = make_client(running.ws_url, token=make_token("pub"), use_protobuf=True)
    reader, reader_events = make_client(running.ws_url, token=make_token("py"))
    js = await start_js(url=running.ws_url, token=make_token("js"))
    await publisher.connect()
    await reader.connect()
    assert (await js.call("connect"))["ok"]
    publisher_messages = await subscribe(publisher, "room")
    messages = await subscribe(reader, "room")
    assert (await js.call("subscribe", channel="room"))["ok"]

    for data in SPREAD:
        await publisher.publish("room", data)
    await wait_until(lambda: len(js.named("publication")) == 3 and len(messages.data) == 3, what="3 publications")
    assert messages.data == VALUES
    assert [event["data"] for event in js.named("publication")] == VALUES
    assert publisher_messages.data == [b'{"a":1}', b"[1,2]", b'"line\\nbreak"']
    history = await reader.history("room", limit=10)
    assert [p.data for p in history.publications] == VALUES
    js_history = await js.call("history", channel="room", limit=10)
    assert [p["data"] for p in js_history["value"]["publications"]] == VALUES

    # Recovery after a cut gives the same, and what a hook made with newlines too.
    pretty = await subscribe(reader, "pretty")
    await running.node.disconnect("py", DISCONNECT_FORCE_RECONNECT)
    await publisher.publish("room", b'{"while":\n"away"}')
    await wait_until(lambda: len(messages.data) == 4, what="the recovered publication")
    assert messages.data[-1] == {"while": "away"}
    assert messages.named("subscribed")[-1].recovered
    await reader_events.wait("connected", lambda ctx: reader_events.named("connected").index(ctx) == 1)
    await reader.publish("pretty", {"indented": [1, 2]})
    await wait_until(lambda: len(pretty.data) == 1, what="the hook's publication")
    assert pretty.data == [{"indented": [1, 2]}]
    # Only the cut this test made: no frame split by a newline closed a connection.
    assert reader_events.named("disconnected") == []
    assert [ctx.code for ctx in reader_events.named("connecting")] == [0, DISCONNECT_FORCE_RECONNECT.code]
    assert js.named("disconnected") == []


async def test_invalid_utf8_is_binary_data_and_harms_no_one_else(
    start_node: StartNode, make_client: Clients, start_js: StartJS
) -> None:
    running = await start_node(node_config(channel=CHANNELS))
    publisher, _ = make_client(running.ws_url, token=make_token("pub"), use_protobuf=True)
    other, _ = make_client(running.ws_url, token=make_token("other"), use_protobuf=True)
    reader, reader_events = make_client(running.ws_url, token=make_token("py"))
    bystander, bystander_events = make_client(running.ws_url, token=make_token("bystander"))
    js = await start_js(url=running.ws_url, token=make_token("js"))
    for client in (publisher, other, reader, bystander):
        await client.connect()
    assert (await js.call("connect"))["ok"]
    await subscribe(publisher, "room")
    other_messages = await subscribe(other, "room")
    messages = await subscribe(reader, "room")
    assert (await js.call("subscribe", channel="room"))["ok"]
    elsewhere = await subscribe(bystander, "lobby")

    # Accepted, stored and delivered: the publisher isn't told of an error.
    await publisher.publish("room", b'"\xff"')
    await wait_until(lambda: other_messages.data == [b'"\xff"'], what="the publication")
    for disconnected in (await reader_events.wait("disconnected"), await js.wait("disconnected")):
        code = disconnected.code if not isinstance(disconnected, dict) else disconnected["code"]
        assert code == 3506
    # Once, and for good: no loop of reconnections.
    await asyncio.sleep(300 * MS)
    assert reader.state == ClientState.DISCONNECTED
    assert len(reader_events.named("disconnected")) == 1
    assert len(js.named("connected")) == 1
    assert messages.data == []

    await publisher.publish("room", b'{"after":1}')
    await running.node.publish("lobby", {"still": "here"})
    await wait_until(lambda: len(other_messages.data) == 2 and elsewhere.data, what="later publications")
    assert other_messages.data[-1] == b'{"after":1}'
    assert elsewhere.data == [{"still": "here"}]
    assert bystander_events.named("disconnected") == []
    history = await other.history("room", limit=10)
    assert [(p.offset, p.data) for p in history.publications] == [(1, b'"\xff"'), (2, b'{"after":1}')]
