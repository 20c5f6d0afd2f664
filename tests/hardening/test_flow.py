"""Peers that don't read, don't answer or disappear, and crowds of short connections.

Each test checks how the server ends or throttles the hostile connection, that a well-behaved
client keeps being served during and after it, and that the server's memory stays bounded.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
from typing import Any

import pytest

from wavecast import CloseCode
from wavecast.asyncio import connect
from wavecast.protocol.frames import OP_CLOSE, OP_PING

from ..support.attack import Bystander, ServerProcess, SpawnServer, crowd, measure_crowd, outcomes, pump, small_sndbuf
from ..support.memory import KIB, MIB, bounded
from ..support.peers import close_code_of, handshake_request, open_raw_client, raw_handshake
from ..support.timing import MS, wait_until

pytestmark = pytest.mark.timeout(30)

CLOSE_TIMEOUT = 500 * MS


async def crowd_ended(server: ServerProcess, count: int) -> dict[str, Any]:
    """Wait until ``count`` handlers under ``/crowd`` have ended in all; return the stats."""
    return await server.wait_for(lambda s: sum(s["crowd"].values()) >= count, f"{count} crowd handlers to end")


async def shut_down(
    server: ServerProcess, bystander: Bystander, how: int, *, rcvbuf: int | None = None
) -> dict[str, Any]:
    """Open a connection to ``/attack``, shut its socket down (``how``: ``socket.SHUT_RD``...),
    and wait until the server ends its handler; check the bystander meanwhile. Return the stats."""
    with await raw_handshake(server.port, "/attack", rcvbuf=rcvbuf) as raw:
        raw.sock.shutdown(how)
        stats = await server.wait_for(lambda s: bool(outcomes(s, "/attack")), "the server to end the handler")
        await bystander.check()
    return stats


async def spawn(spawn_server: SpawnServer, **kwargs: Any) -> ServerProcess:
    kwargs.setdefault("close_timeout", CLOSE_TIMEOUT)
    kwargs.setdefault("ping_interval", None)
    return await spawn_server(**kwargs)


async def test_ping_flood_from_a_peer_that_never_reads(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server)
    async with Bystander(server) as bystander:
        # A tiny receive window: the pongs pile up on the server's side.
        raw = await raw_handshake(server.port, "/attack", rcvbuf=4 * KIB)
        small_sndbuf(raw)
        ping = bytes([0x89, 0x80 | 125]) + b"\x00\x00\x00\x00" + b"p" * 125
        try:
            async with server.memory() as memory:
                # Up to 64 MiB of pings, each answered by a pong of the same size.
                attack = asyncio.create_task(pump(raw, itertools.repeat(ping * 500, 64 * MIB // (len(ping) * 500))))
                await bystander.check()
                pumped = await attack
                await bystander.check()
        finally:
            raw.close()
        # The server stops reading from a peer that doesn't read its pongs.
        assert pumped.stalled
        bounded("ping flood", memory, 8 * MIB, f"{pumped.sent / MIB:.1f} MiB of pings accepted of 64 MiB")
        await bystander.check()
    await server.settled()


async def test_slow_consumer_blocks_send_and_bounds_memory(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server)
    async with Bystander(server) as bystander:
        # /flood sends 64 KiB messages, 200 MiB in all, to a client that never reads.
        with await raw_handshake(server.port, "/flood", rcvbuf=4 * KIB):
            async with server.memory() as memory:
                # send() blocks once the buffers are full: the count stops growing.
                previous = -1
                stats = await server.stats()
                while stats["flood_sent"] != previous:
                    previous = stats["flood_sent"]
                    await bystander.check()
                    await asyncio.sleep(50 * MS)
                    stats = await server.stats()
        assert stats["flood_sent"] < 16 * MIB
        bounded(
            "slow consumer",
            memory,
            8 * MIB,
            f"{stats['flood_sent'] / MIB:.1f} MiB sent of 200 MiB before send() blocked",
        )
        await bystander.check()
    stats = await server.settled()
    [outcome] = outcomes(stats, "/flood")
    assert (outcome["outcome"], outcome["code"]) == ("ConnectionClosedError", CloseCode.ABNORMAL_CLOSURE)


async def test_half_open_connection_is_closed_by_keepalive_with_1011(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server, ping_interval=100 * MS, ping_timeout=200 * MS)
    async with Bystander(server) as bystander:
        # The client keeps its socket but neither reads nor answers: its end is gone.
        stats = await shut_down(server, bystander, socket.SHUT_RD, rcvbuf=4 * KIB)
        await bystander.check()
    [outcome] = outcomes(stats, "/attack")
    # The server sent 1011 and, with no answer, aborted TCP after its close timeout.
    assert outcome["sent_code"] == CloseCode.INTERNAL_ERROR
    assert (outcome["outcome"], outcome["code"]) == ("ConnectionClosedError", CloseCode.ABNORMAL_CLOSURE)
    await server.settled()


async def test_half_open_connections_leak_nothing(spawn_server: SpawnServer) -> None:
    # 800 ms: the bystander answers its own pings from the process that runs the crowd.
    server = await spawn(spawn_server, ping_interval=50 * MS, ping_timeout=800 * MS, close_timeout=200 * MS)
    count = 500
    runs = 0

    async def run() -> None:
        nonlocal runs
        sockets = []

        async def one() -> None:
            raw = await raw_handshake(server.port, "/crowd", rcvbuf=4 * KIB)
            sockets.append(raw)
            raw.sock.shutdown(socket.SHUT_RD)

        runs += 1
        try:
            # All of them open at once, each waiting for its keepalive to time out.
            await crowd(one, count, concurrency=100)
            await crowd_ended(server, runs * count)
        finally:
            for raw in sockets:
                raw.close()

    async with Bystander(server) as bystander:
        await measure_crowd(server, bystander, "half-open connections", run, count=count, bound=2 * MIB)
    stats = await server.settled()
    assert stats["crowd"] == {"ConnectionClosedError 1006 sent 1011": 2 * count}


async def test_peer_that_vanished_is_detected(spawn_server: SpawnServer) -> None:
    # No keepalive: the shutdown itself must be noticed.
    server = await spawn(spawn_server)
    async with Bystander(server) as bystander:
        stats = await shut_down(server, bystander, socket.SHUT_RDWR)
    [outcome] = outcomes(stats, "/attack")
    assert (outcome["outcome"], outcome["code"]) == ("ConnectionClosedError", CloseCode.ABNORMAL_CLOSURE)
    assert outcome["sent_code"] is None

    async def vanish() -> None:
        raw = await raw_handshake(server.port, "/crowd")
        raw.sock.shutdown(socket.SHUT_RDWR)
        raw.close()

    async with Bystander(server) as bystander:
        await measure_crowd(
            server, bystander, "vanished peers", lambda: crowd(vanish, 1000, concurrency=10), count=1000
        )
    stats = await server.settled()
    assert stats["crowd"] == {"ConnectionClosedError 1006 sent None": 2000}


async def test_client_that_stops_answering_pings_is_closed_with_1011(spawn_server: SpawnServer) -> None:
    # The bystander answers from a test process that also runs a hundred raw clients: its
    # pongs may take a few hundred milliseconds on a busy machine.
    server = await spawn(spawn_server, ping_interval=50 * MS, ping_timeout=800 * MS)
    async with Bystander(server) as bystander:
        raw = await raw_handshake(server.port, "/attack")
        pings = 0
        try:
            # The client reads everything but never sends a pong.
            async with asyncio.timeout(3000 * MS):
                while True:
                    opcode, payload = await raw.read_frame()
                    if opcode != OP_PING:
                        break
                    pings += 1
                    if pings == 1:
                        await bystander.check()
                assert opcode == OP_CLOSE
                assert close_code_of(payload) == CloseCode.INTERNAL_ERROR
                assert payload[2:] == b"keepalive ping timeout"
                assert await raw.read_until_eof() == b""
        finally:
            raw.close()
        assert pings >= 1
        # The bystander answers its pings (wavecast.connect does it on its own) and stays.
        await bystander.check()
    stats = await server.settled()
    [outcome] = outcomes(stats, "/attack")
    assert outcome["sent_code"] == CloseCode.INTERNAL_ERROR

    async def silent() -> None:
        raw = await raw_handshake(server.port, "/crowd")
        try:
            async with asyncio.timeout(3000 * MS):
                while (frame := await raw.read_frame())[0] == OP_PING:
                    pass
            assert close_code_of(frame[1]) == CloseCode.INTERNAL_ERROR
        finally:
            # Gone without a close frame: the server doesn't wait for its close timeout.
            raw.close()

    async with Bystander(server) as bystander:
        await measure_crowd(
            server,
            bystander,
            "clients that stop answering pings",
            lambda: crowd(silent, 500, concurrency=100),
            count=500,
            bound=MIB * 3 // 2,
        )
    stats = await server.wait_idle()
    assert stats["crowd"] == {"ConnectionClosedError 1006 sent 1011": 1000}


async def burst(server: ServerProcess, count: int, concurrency: int = 50) -> None:
    """Open and close ``count`` connections quickly, in several ways."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            kind = i % 4
            if kind == 0:  # a clean WebSocket session
                async with connect(server.uri("/"), ping_interval=None, open_timeout=5000 * MS) as client:
                    await client.send("hello")
                    assert await client.recv() == "hello"
                return
            with await open_raw_client(server.port) as raw:
                if kind == 1:  # TCP only, closed at once
                    pass
                elif kind == 2:  # a handshake, then a reset
                    await raw.send(handshake_request(server.port))
                    await raw.read_head()
                    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                else:  # half a request, then a reset
                    await raw.send(handshake_request(server.port)[:30])
                    raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    async with asyncio.timeout(20000 * MS):
        await asyncio.gather(*(one(i) for i in range(count)))


async def test_burst_of_connections_leaks_nothing(spawn_server: SpawnServer) -> None:
    server = await spawn(spawn_server)
    async with Bystander(server) as bystander:
        # A first burst warms up the allocator; the second one must leave nothing behind.
        await burst(server, 500)
        # The bystander's connection is the one that remains.
        await server.wait_idle(keep=1)
        fds = server.fds()
        async with server.memory() as memory:
            attack = asyncio.create_task(burst(server, 500))
            await bystander.check()
            await attack
            stats = await server.wait_idle(keep=1)
        # Every socket is closed. (The baseline may still count the last stats request.)
        await wait_until(lambda: server.fds() <= fds, what=f"{server.fds()} file descriptors to drop to {fds}")
        bounded("burst of 500 connections", memory, 8 * MIB, f"{len(stats['outcomes'])} handlers ended in all")
        await bystander.check()
    stats = await server.settled()
