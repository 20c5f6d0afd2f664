"""Time what the per-address limits add to each handshake and API request: a microbenchmark.

    .venv/bin/python bench/micro_addresses.py [--repeat 20] [--calls 20000]

Each row is one step of ``wavecast.server.addresses``, as ``wavecast serve`` runs it for a
request: finding the client's address (from the peer alone, or behind a trusted proxy from a
two-hop ``X-Forwarded-For``), admitting and releasing a connection, and admitting an API
request; each over ``--calls`` distinct addresses, so that the tables grow as under a crowd.
Rounds are timed apart and the fastest is kept, so other processes on the machine inflate only
the slower rounds. Compare with a WebSocket upgrade's ~160 µs (6,000/s on one core,
bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from wavecast.server.addresses import AddressLimits, client_address, parse_networks

TRUSTED = parse_networks(["127.0.0.1/32", "10.0.0.0/8"])


def fastest(rounds: int, calls: int, run: Callable[[int], None]) -> float:
    """The fastest round's time per call, in microseconds."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run(calls)
        best = min(best, time.perf_counter() - started)
    return best / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--calls", type=int, default=20_000)
    args = parser.parse_args()
    peers = [f"198.51.{n // 256 % 256}.{n % 256}" for n in range(args.calls)]
    forwarded = [[f"203.0.113.9, {peer}"] for peer in peers]
    six = [f"2001:db8:{n:x}::1" for n in range(args.calls)]

    def peer_only(calls: int) -> None:
        for n in range(calls):
            client_address(peers[n], (), ())

    def behind_proxy(calls: int) -> None:
        for n in range(calls):
            client_address("10.0.0.1", forwarded[n], TRUSTED)

    def open_close(addresses: list[str]) -> Callable[[int], None]:
        def run(calls: int) -> None:
            limits = AddressLimits()
            now = time.monotonic()
            for n in range(calls):
                limits.open(n, addresses[n], now)
            for n in range(calls):
                limits.close(n)

        return run

    def api(calls: int) -> None:
        limits = AddressLimits()
        now = time.monotonic()
        for n in range(calls):
            limits.api(peers[n], now)

    rows = {
        "client address, peer only (no trusted proxies)": peer_only,
        "client address, behind a trusted proxy, 2 hops": behind_proxy,
        "open + close a connection, IPv4": open_close(peers),
        "open + close a connection, IPv6 (/64 key)": open_close(six),
        "admit an API request": api,
    }
    for name, run in rows.items():
        print(f"{name}: {fastest(args.repeat, args.calls, run):.2f} µs")


if __name__ == "__main__":
    main()
