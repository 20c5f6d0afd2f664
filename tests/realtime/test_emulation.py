"""emulation: sessions on streams, their framing, and the commands POSTed to them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from wavecast.codes import DISCONNECT_SHUTDOWN
from wavecast.protocol.prepared import PreparedMessage
from wavecast.realtime import Delivery, Node, StreamTransport, deliver, serve_stream, sse_event
from wavecast.realtime.codec import JSONCodec, ProtobufCodec
from wavecast.realtime.emulation import decode_emulation

from ..support.timing import wait_until
from ..support.tokens import make_token
from .helpers import MakeNode


class Body:
    """A response body that keeps what is written."""

    def __init__(self) -> None:
        self.pieces: list[bytes] = []
        self.ended = False
        self.writing_paused = False
        self.on_writable: Callable[[], None] | None = None
        self.on_close: Callable[[], None] | None = None

    @property
    def open(self) -> bool:
        return not self.ended

    def write(self, data: bytes) -> None:
        assert not self.ended
        self.pieces.append(data)

    def end(self) -> None:
        self.ended = True
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()

    def replies(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in b"".join(self.pieces).splitlines() if line.strip()]


def test_sse_event_gives_each_line_its_data_field() -> None:
    assert sse_event(b"{}") == b"data: {}\n\n"
    assert sse_event(b'{"a":1}\n{"b":2}') == b'data: {"a":1}\ndata: {"b":2}\n\n'


@pytest.mark.parametrize(
    ("name", "codec", "framed"),
    [
        ("http_stream", JSONCodec, b"{}\n"),
        ("http_stream", ProtobufCodec, b"{}"),
        ("sse", JSONCodec, b"data: {}\n\n"),
    ],
)
def test_transport_frames_as_its_clients_read(name: str, codec: type, framed: bytes) -> None:
    body = Body()
    transport = StreamTransport(body, name, codec)
    assert transport.writable()
    transport.write(PreparedMessage(b"{}", text=not codec.binary))
    assert body.pieces == [framed]
    body.writing_paused = True
    assert not transport.writable()
    woken: list[bool] = []

    class Session:
        def writable_again(self) -> None:
            woken.append(True)

    transport.session = Session()  # type: ignore[assignment]
    assert body.on_writable is not None
    body.on_writable()
    assert woken == [True]


def test_close_sends_the_disconnect_push_then_ends() -> None:
    body = Body()
    StreamTransport(body, "http_stream", JSONCodec).close(DISCONNECT_SHUTDOWN)
    assert body.replies() == [{"push": {"disconnect": {"code": 3001, "reason": "shutdown", "reconnect": True}}}]
    assert body.ended


def test_decode_emulation_in_both_forms() -> None:
    body = json.dumps({"session": "s", "node": "n", "data": '{"id":1}'}).encode()
    assert decode_emulation(JSONCodec, body) == ("s", "n", '{"id":1}')
    assert decode_emulation(JSONCodec, b"[") is None
    # EmulationRequest{node = 1, session = 2, data = 3}, as centrifuge-js's protobuf build encodes it.
    proto = b"\x0a\x01n\x12\x01s\x1a\x03\x02\x08\x01"
    assert decode_emulation(ProtobufCodec, proto) == ("s", "n", b"\x02\x08\x01")
    assert decode_emulation(ProtobufCodec, b"\x0a\x05n") is None


async def test_a_session_from_connect_to_the_end_of_its_stream(make_node: MakeNode) -> None:
    node: Node = await make_node()
    body = Body()
    connect = json.dumps({"id": 1, "connect": {"token": make_token("ann")}})
    task = asyncio.get_running_loop().create_task(serve_stream(node, body, "http_stream", JSONCodec, connect))
    await wait_until(lambda: body.replies(), what="the connect reply")
    reply = body.replies()[0]["connect"]
    assert isinstance(reply, dict) and reply["node"] == node.uid
    session_id = reply["session"]
    assert await deliver(node, "nobody", "{}") is Delivery.NO_SESSION
    assert await deliver(node, session_id, b"\x00") is Delivery.BAD_REQUEST
    assert await deliver(node, session_id, json.dumps({"id": 2, "rpc": {"method": "x"}})) is Delivery.DELIVERED
    # RPCs run beside later commands: the reply comes once the handler answered.
    await wait_until(lambda: len(body.replies()) == 2, what="the RPC's reply")
    assert body.replies()[1] == {"id": 2, "error": {"code": 104, "message": "method not found"}}
    # The client leaves: the session ends with its stream, and POSTs find nothing.
    body.end()
    await task
    assert not node.hub.user_sessions("ann") and not len(node.emulation)
    assert await deliver(node, session_id, "{}") is Delivery.NO_SESSION
