"""Bytes on the wire for the trading example's boards, with and without fossil delta compression.

    .venv/bin/python bench/delta.py [--boards 120] [--sector tech] [--interval 1.0]

The trading example publishes each sector's board, ``{symbol: [seq, price]}`` of its 32
symbols, once a second (``examples/trading/app.py``). This script replays its seeded market:
between two boards, one second of the feed's ticks (``TICK_RATE`` over all sectors, in
``BATCH_RATE`` batches) moves the prices, and each board is published with ``delta=True`` to a
node served on a local port (``--interval`` sets the seconds of feed between two boards: the
example's is 1). Four clients speak the protocol over real sockets, JSON and
protobuf, each with and without ``delta: "fossil"`` in its subscribe command; the script counts
the bytes of the WebSocket messages each receives (payloads, without frame headers), applies the
deltas and checks that every board comes out exactly as published. The ratio is what a delta
subscriber receives over what a plain one does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from examples.trading.app import BATCH_RATE, SECTORS, TICK_RATE, Market, board  # noqa: E402

import wavecast  # noqa: E402
from wavecast.realtime import ChannelOptions, Node, NodeConfig, fossil, websocket_server_options  # noqa: E402

CHANNEL = "board:{}"


def boards(count: int, sector: str, interval: float) -> list[dict[str, Any]]:
    """Successive boards of ``sector``, ``interval`` seconds of the example's feed apart."""
    market = Market()
    states = []
    for _ in range(count):
        for _ in range(max(round(BATCH_RATE * interval), 1)):
            market.move(TICK_RATE // BATCH_RATE, 0.0)
        states.append(board(market, sector))
    return states


class Subscriber:
    """A raw protocol client: counts what it receives and decodes the boards."""

    def __init__(self, url: str, channel: str, *, delta: bool, protobuf: bool) -> None:
        self.url, self.channel, self.delta, self.protobuf = url, channel, delta, protobuf
        self.bytes = 0
        self.boards: list[Any] = []
        self.base = b""

    async def run(self, ready: asyncio.Event, count: int) -> None:
        subscribe: dict[str, Any] = {"channel": self.channel}
        if self.delta:
            subscribe["delta"] = "fossil"
        subprotocols = ["centrifuge-protobuf"] if self.protobuf else None
        async with wavecast.connect(self.url, subprotocols=subprotocols) as ws:
            if self.protobuf:
                from centrifuge.protocol import client_pb2
                from google.protobuf.json_format import ParseDict

                commands = [ParseDict(c, client_pb2.Command()).SerializeToString() for c in self._commands(subscribe)]
                await ws.send(b"".join(bytes([len(c)]) + c for c in commands))
            else:
                await ws.send("\n".join(json.dumps(c) for c in self._commands(subscribe)))
            ready.set()
            while len(self.boards) < count:
                message = await ws.recv()
                raw = message.encode() if isinstance(message, str) else message
                self._read(raw)

    @staticmethod
    def _commands(subscribe: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"id": 1, "connect": {}}, {"id": 2, "subscribe": subscribe}]

    def _read(self, raw: bytes) -> None:
        pubs = []
        if self.protobuf:
            from centrifuge.protocol import client_pb2

            pos = 0
            while pos < len(raw):
                length, shift = 0, 0
                while True:
                    byte = raw[pos]
                    pos += 1
                    length |= (byte & 0x7F) << shift
                    shift += 7
                    if byte < 0x80:
                        break
                reply = client_pb2.Reply.FromString(raw[pos : pos + length])
                pos += length
                if reply.HasField("push") and reply.push.HasField("pub"):
                    pubs.append((reply.push.pub.data, reply.push.pub.delta))
        else:
            for line in raw.split(b"\n"):
                pub = json.loads(line).get("push", {}).get("pub")
                if pub is not None:
                    data = pub["data"]
                    pubs.append((data.encode() if self.delta else json.dumps(data).encode(), pub.get("delta", False)))
        if not pubs:
            return  # the connect and subscribe replies
        self.bytes += len(raw)
        for data, is_delta in pubs:
            self.base = fossil.apply(self.base, data) if is_delta else data
            self.boards.append(json.loads(self.base))


async def measure(count: int, sector: str, interval: float) -> dict[str, Subscriber]:
    states = boards(count, sector, interval)
    channel = CHANNEL.format(sector)
    node = Node(
        NodeConfig(
            allow_anonymous_connect_without_token=True,
            channel=ChannelOptions(allow_subscribe_for_anonymous=True, allowed_delta_types=["fossil"]),
            namespaces={"board": ChannelOptions(allow_subscribe_for_anonymous=True, allowed_delta_types=["fossil"])},
            client_ping_interval=0,
        )
    )
    async with node:
        server = await wavecast.serve(host="127.0.0.1", port=0, **websocket_server_options(node))
        url = f"ws://127.0.0.1:{server.port}/connection/websocket"
        subscribers = {
            f"{form}, {'delta' if delta else 'plain'}": Subscriber(
                url, channel, delta=delta, protobuf=form == "protobuf"
            )
            for form in ("json", "protobuf")
            for delta in (False, True)
        }
        readies = [asyncio.Event() for _ in subscribers]
        tasks = [asyncio.create_task(s.run(r, count)) for s, r in zip(subscribers.values(), readies, strict=True)]
        for ready in readies:
            await ready.wait()
        while sum(len(session.subscriptions) for session in node.hub.sessions()) < len(subscribers):
            await asyncio.sleep(0.01)
        for state in states:
            await node.publish(channel, state, delta=True)
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        server.close()
        await server.wait_closed()
    for name, subscriber in subscribers.items():
        if subscriber.boards != states:
            raise SystemExit(f"{name}: the boards received differ from those published")
    return subscribers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", type=int, default=120, help="boards to publish (one a second in the example)")
    parser.add_argument("--sector", default=SECTORS[0], choices=SECTORS)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds of the feed between two boards")
    args = parser.parse_args()
    subscribers = asyncio.run(measure(args.boards, args.sector, args.interval))
    print(
        f"{args.boards} boards of board:{args.sector} (32 symbols), {args.interval} s of the feed apart, "
        "every one reconstructed exactly\n"
    )
    print("| client | bytes received | per board | delta / plain |")
    print("|---|---|---|---|")
    for form in ("json", "protobuf"):
        plain = subscribers[f"{form}, plain"].bytes
        for kind in ("plain", "delta"):
            received = subscribers[f"{form}, {kind}"].bytes
            ratio = f"{received / plain:.3f}" if kind == "delta" else "1"
            print(f"| {form}, {kind} | {received:,} | {received / args.boards:,.0f} | {ratio} |")


if __name__ == "__main__":
    main()
