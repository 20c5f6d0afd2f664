"""runner: run() and new_event_loop() on asyncio's loop and on uvloop, and echo on both."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from wavecast import CloseCode, ConnectionClosedOK, Limits
from wavecast.asyncio import BroadcastResult, ServerConnection, broadcast, connect, new_event_loop, run, serve

from ..support.peers import raw_handshake
from ..support.servers import echo, ws_uri
from ..support.timing import MS

uvloop = pytest.importorskip("uvloop")


async def _loop_type() -> type[asyncio.AbstractEventLoop]:
    return type(asyncio.get_running_loop())


def test_run_with_uvloop() -> None:
    assert run(_loop_type(), use_uvloop=True) is uvloop.Loop


def test_run_without_uvloop() -> None:
    loop_type = run(_loop_type(), use_uvloop=False)
    assert not issubclass(loop_type, uvloop.Loop)
    assert issubclass(loop_type, asyncio.BaseEventLoop)


def test_run_prefers_uvloop_when_installed() -> None:
    assert run(_loop_type()) is uvloop.Loop


def test_run_returns_the_result_and_propagates_exceptions() -> None:
    async def fail() -> None:
        raise KeyError("inside")

    async def answer() -> int:
        return 42

    assert run(answer(), use_uvloop=True) == 42
    with pytest.raises(KeyError):
        run(fail(), use_uvloop=False)


def test_run_debug() -> None:
    async def debug() -> bool:
        return asyncio.get_running_loop().get_debug()

    assert run(debug(), use_uvloop=False, debug=True) is True


def test_new_event_loop_without_uvloop_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry in sys.modules makes the import fail as if uvloop were missing.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    loop = new_event_loop()
    try:
        assert not isinstance(loop, uvloop.Loop)
    finally:
        loop.close()
    with pytest.raises(ImportError):
        new_event_loop(use_uvloop=True)


@pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_new_event_loop(use_uvloop: bool) -> None:
    loop = new_event_loop(use_uvloop)
    try:
        assert isinstance(loop, uvloop.Loop) is use_uvloop
    finally:
        loop.close()


# --- the asyncio layer on both loops ---------------------------------------------------------


async def _echo_scenario() -> None:
    limits = Limits(max_message_size=8 * 2**20, max_frame_size=8 * 2**20)
    async with serve(echo, "127.0.0.1", 0, limits=limits) as server:
        async with connect(ws_uri(server), limits=limits) as client:
            await client.send("text ✓")
            assert await client.recv() == "text ✓"
            await client.send(b"\x00\xff")
            assert await client.recv() == b"\x00\xff"
            big = os.urandom(4 * 2**20)
            await client.send(big)
            assert await client.recv() == big
            latency = await (await client.ping())
            assert latency >= 0
        assert client.close_code == CloseCode.NORMAL_CLOSURE
        async with connect(ws_uri(server)) as client:
            server.close()
            with pytest.raises(ConnectionClosedOK) as info:
                await client.recv()
            assert info.value.code == CloseCode.GOING_AWAY
            await server.wait_closed()


async def _flow_control_scenario() -> None:
    # The transport's flow control differs between the loops; check send() blocks on both.
    blocked = asyncio.Event()
    flooded: list[ServerConnection] = []
    chunk = os.urandom(16384)

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        if connection.request.path != "/flood":
            await echo(connection)
            return
        flooded.append(connection)
        for _ in range(4096):
            send = asyncio.ensure_future(connection.send(chunk))
            done, _ = await asyncio.wait({send}, timeout=50 * MS)
            if not done:
                blocked.set()
            try:
                await send
            except ConnectionClosedOK:
                return

    async with serve(handler, "127.0.0.1", 0, write_limit=32768, close_timeout=100 * MS) as server:
        with await raw_handshake(server.port, "/flood", rcvbuf=4096):
            async with asyncio.timeout(5000 * MS):
                await blocked.wait()
            assert flooded[0].transport.get_write_buffer_size() <= 2 * 32768 + len(chunk) + 64
            async with connect(ws_uri(server)) as client:
                assert broadcast(server.connections, "news") == BroadcastResult(sent=1, skipped=1)
                assert await client.recv() == "news"
                await client.send("served")
                assert await client.recv() == "served"


@pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_echo_on_both_loops(use_uvloop: bool) -> None:
    run(asyncio.wait_for(_echo_scenario(), 10_000 * MS), use_uvloop=use_uvloop)


@pytest.mark.parametrize("use_uvloop", [True, False], ids=["uvloop", "asyncio"])
def test_flow_control_on_both_loops(use_uvloop: bool) -> None:
    run(asyncio.wait_for(_flow_control_scenario(), 10_000 * MS), use_uvloop=use_uvloop)
