"""HTTP-streaming clients that vanish, against ``wavecast serve`` in a subprocess whose memory
is measured alone: their sessions are freed, and the server doesn't grow round after round."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

from ..support.cleanup import stopping
from ..support.config import BASE_CONFIG, merge, write_config
from ..support.http import api
from ..support.memory import MIB, Memory, bounded
from ..support.processes import free_port
from ..support.serve import ServeProcess
from ..support.streams import StreamClient, open_raw_stream
from ..support.timing import MS, wait_until

STREAMS = {
    "http_stream": {"enabled": True},
    "sse": {"enabled": True},
    # 1,200 streams in a few seconds from 127.0.0.1, past its handshake rate: not what this measures.
    "per_address": {"handshake_rate": False},
}
ROUNDS = 5
PER_ROUND = 200


async def test_vanished_streams_free_their_memory(tmp_path: Path) -> None:
    config = write_config(tmp_path, merge(BASE_CONFIG, STREAMS))

    def serve() -> ServeProcess:
        return ServeProcess(config, free_port(), cwd=tmp_path)

    async with stopping(serve, ServeProcess.kill, ready=ServeProcess.wait_ready) as start:
        server = await start()
        bystander = await StreamClient.open(server.url, "bystander")

        async def vanish_round() -> None:
            streams = [await open_raw_stream(server.port, f"vanishing{n}") for n in range(PER_ROUND)]
            for raw, _session in streams:
                # Gone without a word, as a phone that loses its network: a reset, no FIN.
                raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raw.close()

            async def only_the_bystander() -> bool:
                info = await api(server.url, "info")
                return bool(info["result"]["nodes"][0]["num_clients"] == 1)

            await wait_until(only_the_bystander, timeout=10_000 * MS, what="the vanished sessions to end")

        await vanish_round()  # warm up: first allocations, caches
        async with Memory(server.pid) as memory:
            for _ in range(ROUNDS):
                await vanish_round()
        bounded("streams that vanish", memory, 8 * MIB, f"{ROUNDS} rounds of {PER_ROUND} streams")
        # The bystander's session still answers.
        assert (await bystander.command(rpc={"method": "nothing"}))["error"]["code"] == 104
        await bystander.close()
