"""Measure the server's CPU per command from many real-time clients, each sending a few a second.

``python bench/commands.py [--clients 300] [--rate 40] [--duration 10] [--reps 3]`` starts
``bench/servers/wavecast_channels.py``, connects the clients with the Centrifugo protocol and
has each send ``--rate`` ping commands a second (under the node's default limit of 100), one at
a time, waiting for each reply: the path of a client's commands into its session, as chat
messages, presence queries or pongs take it. It prints the commands per second and the
server's CPU time per command (user + system, from ``/proc``), which a busy machine affects
less than the rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import wavecast

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import free_port

HERE = Path(__file__).resolve().parent
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


async def client(port: int, rate: float, stop: asyncio.Event, counts: list[int]) -> None:
    async with wavecast.connect(f"ws://127.0.0.1:{port}/connection/websocket", ping_interval=None) as connection:
        await connection.send('{"id":1,"connect":{}}')
        await connection.recv()
        command_id = 1
        period = 1 / rate
        # Clients start out of step, as real ones do.
        await asyncio.sleep(period * (hash(id(connection)) % 1000) / 1000)
        while not stop.is_set():
            started = time.monotonic()
            command_id += 1
            await connection.send(f'{{"id":{command_id},"ping":{{}}}}')
            await connection.recv()
            counts[0] += 1
            await asyncio.sleep(max(0.0, period - (time.monotonic() - started)))


async def run(clients: int, rate: float, duration: float) -> tuple[float, float]:
    port = free_port(next_too=True)
    command = [sys.executable, str(HERE / "servers" / "wavecast_channels.py"), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        stop = asyncio.Event()
        counts = [0]
        tasks = [asyncio.ensure_future(client(port, rate, stop, counts)) for _ in range(clients)]
        await asyncio.sleep(2)  # all connected, in step
        counted, cpu, started = counts[0], cpu_seconds(server.pid), time.monotonic()
        await asyncio.sleep(duration)
        commands = counts[0] - counted
        cpu = cpu_seconds(server.pid) - cpu
        elapsed = time.monotonic() - started
        stop.set()
        await asyncio.gather(*tasks)
        return commands / elapsed, cpu / commands * 1e6
    finally:
        server.terminate()
        server.wait()


async def main(clients: int, rate: float, duration: float, reps: int) -> None:
    results = []
    for rep in range(reps):
        per_second, micros = await run(clients, rate, duration)
        load = os.getloadavg()[0]
        print(
            f"rep {rep + 1}: {per_second:,.0f} commands/s, {micros:.1f} µs of server CPU per command, load {load:.2f}"
        )
        results.append((per_second, micros))
    print()
    print(f"# {clients} clients x {rate:g} commands/s, {duration:g} s, median of {reps}")
    print(f"# command: python bench/commands.py {' '.join(sys.argv[1:])}")
    print()
    print("| commands/s | µs of server CPU per command |")
    print("|---|---|")
    print(f"| {statistics.median(r[0] for r in results):,.0f} | {statistics.median(r[1] for r in results):.1f} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--rate", type=float, default=40.0, help="commands a second per client")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    wavecast.run(main(args.clients, args.rate, args.duration, args.reps))
