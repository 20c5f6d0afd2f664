"""Hostile clients after the handshake: frames, compression, closing, resets.

Each test checks what the hostile client gets, that a well-behaved client keeps being served
during and after the attack, and, where an unbounded implementation would allocate, that the
server's memory stays bounded.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import os
import socket
import struct
import zlib
from typing import Any

import pytest

from wavecast import CloseCode, ConnectionClosedError
from wavecast.asyncio import connect
from wavecast.protocol import apply_mask, frame_header, serialize_close
from wavecast.protocol.frames import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT

from ..support.attack import (
    Bystander,
    ServerProcess,
    SpawnServer,
    attacked,
    crowd,
    measure_crowd,
    outcomes,
    pump,
    small_sndbuf,
)
from ..support.memory import KIB, MIB, bounded, record
from ..support.peers import RawSocket, close_code_of, handshake_request, open_raw_client, raw_handshake
from ..support.timing import MS

pytestmark = pytest.mark.timeout(30)

CLOSE_TIMEOUT = 500 * MS
MAX_MESSAGE_SIZE = MIB


def masked_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv1: bool = False) -> bytes:
    mask = os.urandom(4)
    return frame_header(opcode, len(payload), fin=fin, rsv1=rsv1, mask=mask) + apply_mask(payload, mask)


async def expect_close(raw: RawSocket, code: int) -> bytes:
    """Read frames until a close frame, check its code, then the end of TCP; return its reason."""
    async with asyncio.timeout(2000 * MS):
        while True:
            opcode, payload = await raw.read_frame()
            if opcode == OP_CLOSE:
                break
            assert opcode in (OP_PING, OP_PONG), (opcode, payload[:50])
        assert close_code_of(payload) == code, payload
        await raw.read_until_eof()
    return payload[2:]


async def spawn(spawn_server: SpawnServer, **kwargs: Any) -> ServerProcess:
    kwargs.setdefault("limits", {"max_message_size": MAX_MESSAGE_SIZE, "max_frame_size": MAX_MESSAGE_SIZE})
    return await spawn_server(close_timeout=CLOSE_TIMEOUT, ping_interval=None, **kwargs)


async def test_huge_declared_frame_length_closes_1009_without_allocating(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server)
    async with attacked(server, "/attack") as (bystander, raw):
        small_sndbuf(raw)
        async with server.memory() as memory:
            mask = b"\x00\x00\x00\x00"
            await raw.send(bytes([0x82, 0x80 | 127]) + (2**62).to_bytes(8, "big") + mask)
            reason = await expect_close(raw, CloseCode.MESSAGE_TOO_BIG)
            await bystander.check()
    assert b"frame of 4611686018427387904 bytes" in reason
    bounded("frame declaring 2**62 bytes", memory, 2 * MIB)
    stats = await server.settled()
    assert [o["sent_code"] for o in outcomes(stats, "/attack")] == [CloseCode.MESSAGE_TOO_BIG]


async def test_fragment_flood_closes_1009_at_max_fragments(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server, limits={"max_fragments": 64})
    async with attacked(server, "/recv") as (bystander, raw):
        small_sndbuf(raw)
        # 64 one-byte fragments are allowed; a ping in between proves the connection is open.
        await raw.send(
            masked_frame(OP_TEXT, b"a", fin=False)
            + b"".join(masked_frame(OP_CONT, b"a", fin=False) for _ in range(63))
            + masked_frame(OP_PING, b"still open")
        )
        async with asyncio.timeout(2000 * MS):
            assert await raw.read_frame() == (OP_PONG, b"still open")
        await bystander.check()
        # The 65th fails the connection; a million more are discarded.
        fragment = bytes([OP_CONT, 0x81]) + b"\x00\x00\x00\x00" + b"a"
        async with server.memory() as memory:
            attack = asyncio.create_task(pump(raw, itertools.repeat(fragment * 10000, 100)))
            await bystander.check()
            pumped = await attack
            reason = await expect_close(raw, CloseCode.MESSAGE_TOO_BIG)
    assert reason == b"message of 65 fragments, expected no more than 64"
    bounded("fragment flood", memory, 4 * MIB, f"{pumped.sent // len(fragment)} one-byte fragments sent")
    stats = await server.settled()
    assert stats["received"] == 0


@functools.cache
def zip_bomb(size: int, window_bits: int) -> bytes:
    """Deflate ``size`` zero bytes, as permessage-deflate sends them (RFC 7692 section 7.2.1)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -window_bits)
    zeros = bytes(MIB)
    data = b"".join([*(compressor.compress(zeros) for _ in range(size // MIB)), compressor.flush(zlib.Z_SYNC_FLUSH)])
    assert data.endswith(b"\x00\x00\xff\xff")
    return data[:-4]


async def test_zip_bomb_from_a_raw_client_closes_1009(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server)
    bomb = zip_bomb(200 * MIB, 12)
    assert len(bomb) < MAX_MESSAGE_SIZE  # the compressed frame passes max_frame_size
    async with attacked(server) as (bystander, raw):
        offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        await raw.send(handshake_request(server.port, "/attack", headers=offer))
        async with asyncio.timeout(2000 * MS):
            head = await raw.read_head()
        assert head.startswith(b"HTTP/1.1 101 ")
        assert b"permessage-deflate; client_max_window_bits=12" in head
        async with server.memory() as memory:
            await raw.send(masked_frame(OP_BINARY, bomb, rsv1=True))
            reason = await expect_close(raw, CloseCode.MESSAGE_TOO_BIG)
            await bystander.check()
    assert reason == b"message inflates past 1048576 more bytes, the limit on its size"
    bounded("zip bomb, raw client", memory, 8 * MIB, f"{len(bomb) / KIB:.0f} KiB inflating to 200 MiB")
    stats = await server.settled()
    assert [o["sent_code"] for o in outcomes(stats, "/attack")] == [CloseCode.MESSAGE_TOO_BIG]


async def test_zip_bomb_from_wavecast_connect_closes_1009(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server)
    async with Bystander(server) as bystander:
        async with server.memory() as memory:
            async with connect(server.uri("/recv"), compression="deflate", ping_interval=None) as client:
                # The client compresses 64 MiB of zeros into a frame of about 64 KiB.
                await client.send(bytes(64 * MIB))
                with pytest.raises(ConnectionClosedError) as info:
                    async with asyncio.timeout(2000 * MS):
                        await client.recv()
            await bystander.check()
        assert info.value.code == CloseCode.MESSAGE_TOO_BIG
        bounded("zip bomb, wavecast.connect", memory, 8 * MIB, "64 MiB message")
        await bystander.check()
    stats = await server.settled()
    assert stats["received"] == 0


async def close_then_garbage(server: ServerProcess, path: str, garbage: int) -> None:
    """Send a close frame, then a message and ``garbage`` bytes in the same segment."""
    with await raw_handshake(server.port, path) as raw:
        await raw.send(
            masked_frame(OP_CLOSE, serialize_close(CloseCode.NORMAL_CLOSURE, "bye"))
            + masked_frame(OP_TEXT, b"after the close")
            + b"\xff" * garbage
        )
        assert await expect_close(raw, CloseCode.NORMAL_CLOSURE) == b""


async def test_data_after_a_close_frame_is_ignored(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server)
    async with Bystander(server) as bystander:
        await close_then_garbage(server, "/recv", 100)
        await bystander.check()
        # 64 KiB after each close frame, which the server must drop rather than keep.
        await measure_crowd(
            server,
            bystander,
            "data after a close frame",
            lambda: crowd(lambda: close_then_garbage(server, "/crowd/recv", 64 * KIB), 500, concurrency=1),
            count=500,
            bound=MIB * 3 // 2,
        )
    stats = await server.settled()
    assert stats["received"] == 0
    [outcome] = outcomes(stats, "/recv")
    assert (outcome["outcome"], outcome["code"]) == ("ConnectionClosedOK", CloseCode.NORMAL_CLOSURE)
    assert stats["crowd"] == {"ConnectionClosedOK 1000 sent 1000": 1000}


async def reset_mid_message(server: ServerProcess, path: str) -> None:
    with await raw_handshake(server.port, path) as raw:
        # A first fragment, then a ping whose pong proves the server has read it.
        await raw.send(masked_frame(OP_BINARY, b"x" * 10 * KIB, fin=False) + masked_frame(OP_PING, b"read?"))
        async with asyncio.timeout(2000 * MS):
            assert await raw.read_frame() == (OP_PONG, b"read?")
        # Then half of the next fragment, and a reset.
        await raw.send(masked_frame(OP_CONT, b"y" * 64 * KIB)[: 32 * KIB])
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def test_tcp_reset_in_the_middle_of_a_message(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server)
    async with Bystander(server) as bystander:
        await reset_mid_message(server, "/recv")
        await bystander.check()
        # Each one leaves 42 KiB of a message half-read when it resets.
        await measure_crowd(
            server,
            bystander,
            "TCP reset in the middle of a message",
            lambda: crowd(lambda: reset_mid_message(server, "/crowd/recv"), 500, concurrency=1),
            count=500,
            bound=3 * MIB,
        )
    stats = await server.settled()
    assert stats["crowd"] == {"ConnectionClosedError 1006 sent None": 1000}
    assert stats["received"] == 0
    [outcome] = outcomes(stats, "/recv")
    assert (outcome["outcome"], outcome["code"]) == ("ConnectionClosedError", CloseCode.ABNORMAL_CLOSURE)


async def test_memory_probe_sees_what_an_unbounded_server_allocates(spawn_server: SpawnServer) -> None:
    # The control for the bounds above: without limits, the same kind of bomb costs its full size.
    server = await spawn(spawn_server, limits={"max_message_size": None, "max_frame_size": None})
    bomb = zip_bomb(64 * MIB, 12)
    offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
    with await open_raw_client(server.port) as raw:
        await raw.send(handshake_request(server.port, "/recv", headers=offer))
        async with asyncio.timeout(2000 * MS):
            assert (await raw.read_head()).startswith(b"HTTP/1.1 101 ")
        async with server.memory() as memory:
            await raw.send(masked_frame(OP_BINARY, bomb, rsv1=True) + masked_frame(OP_PING, b"done?"))
            async with asyncio.timeout(5000 * MS):
                assert await raw.read_frame() == (OP_PONG, b"done?")
            await server.wait_for(lambda s: s["received"] == 1, "the message")
    record("control: zip bomb without limits", memory, "64 MiB message")
    assert memory.growth > 48 * MIB
