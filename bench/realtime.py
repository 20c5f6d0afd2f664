"""Channel fan-out through wavecast's real-time layer, beside raw broadcasts, in one run.

    .venv/bin/python bench/realtime.py [--reps 3] [--duration 3] [--scenarios fan10k ch10k ...]

This drives the ws-bench instrument's trial runner (``bench/loadgen/run.py``: a fresh
server pinned to CPU 0 per trial, the loadgen on CPU 1, other processes' CPU recorded),
whose loadgen's real-time options (``--sub-init``, ``--pub-path``, ``--unwrap``) let the
fan-out mode connect and subscribe with the Centrifugo protocol and unwrap its pushes.

| key | server | what a delivery is |
|---|---|---|
| fan1k, fan10k | websockets, wavecast (raw ``/bcast``) | a WebSocket message to a subscriber |
| ch1k, ch10k | wavecast-channels | a publication pushed to a channel subscriber |
| ch10k-recovery | wavecast-channels --history | the same, positioned subscribers (history, recovery) |
| ch10k-tags | wavecast-channels --tags | the same, publications tagged, subscribers without a filter |
| ch10k-tags10 | wavecast-channels --tags | the same, subscribers in 10 groups, each with its tags filter (all pass) |
| ch10k-redis | wavecast_cluster.py --nodes 1 | the same, on the Redis engine (one node) |
| xnode10k | wavecast_cluster.py --nodes 2 [--engine E] | published on node A; half the subscribers |
| | | on node B, through Redis, or E: nats, redis-shards (3), redis-cluster (3 masters) |
| xnode1000ch | the same, --channels 1000 | each message published on node A to 1,000 channels |
| | | of 10 subscribers; half the channels' subscribers on node B |
| ch1k-serve, ch10k-serve | wavecast_serve_channels.py (``wavecast serve``) | a push to a WebSocket subscriber |
| ch1k-http, ch10k-http | the same server | a push, a line of an HTTP-streaming response |
| ch1k-sse, ch10k-sse | the same server | a push, an event of an SSE response |
| room1k, room10k | wavecast-channels, node-socketio, python-socketio(-uvicorn) | a publication to a channel's |
| | | subscriber, or a Socket.IO event ``42["msg",..]`` to a member of the room ``bench`` |
| join10k | the same | connect + subscribe (or join) 10,000 clients; conn/s and KiB per joined client |

In the Redis and NATS scenarios the nodes, redis-server and nats-server share CPU 0, so their
``bg`` column counts node B and the servers, not noise. In ``xnode1000ch`` subscriber ``i``
subscribes to channel ``bench<i mod 1000>``, so every channel has 10 subscribers, all on one node
(even channels on A, odd ones on B); publications per second are its deliveries per second / 10.

The channel scenarios are compared with websockets' raw broadcast of the same run: the
ratio says how many times more deliveries per second a subscriber of a channel gets,
through connect, subscribe and the real-time protocol, than a websockets ``broadcast()``.

The ``-serve``, ``-http`` and ``-sse`` scenarios run ``wavecast serve``'s endpoints on one
server (``bench/servers/wavecast_serve_channels.py``). Every subscriber sends the same connect
command, whose token subscribes it to the channel at connect (server-side), as the WebSocket's
first message, as the body of ``POST /connection/http_stream`` or in the ``cf_connect``
parameter of ``GET /connection/sse``, so that only the transport differs; each fallback is
also compared with the WebSocket on that server in the same run (``x WebSocket``). Their
publisher is a WebSocket on the next port (``--pub-port-offset 1``).

The ``room`` and ``join`` scenarios put wavecast's channels beside the real-time servers a team
would otherwise pick in Python and Node: python-socketio 5 (on aiohttp; ``-uvicorn``, the same
app as ASGI under uvicorn) and socket.io 4 (``bench/loadgen/peers/*socketio_server*``, installed
by ``bench/loadgen/setup.sh``). Their subscribers are the loadgen's Socket.IO clients
(``--socketio``): Engine.IO v4 over a WebSocket, the default namespace, an acknowledged
``join`` event; wavecast's send the Centrifugo connect and subscribe commands. The publisher
is the same plain WebSocket at ``/publish`` on every server. ``join10k`` counts a client once
its subscribe reply (or the join's ack) has arrived, and reads the server's RSS while the
10,000 are held: (RSS held - RSS before) / 10,000. Their ratios are against wavecast-channels
in the same run, and ``/CPU-s`` divides by the server's CPU seconds, which a shared machine
takes less from than it does from the wall clock.
Results go to ``bench/results/realtime-<stamp>.md`` and ``.jsonl``.

``--ref REF`` measures a commit beside the working tree in the same run: the channel scenarios
also get the peers ``wavecast-channels@REF`` (and ``-recovery@REF``), which run the same server
script on a snapshot of that commit's src/, with its own C extensions, as ``bench/run.sh``'s
``WAVECAST_REF`` builds it. A change to the fan-out is compared that way, before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
# BENCH_INSTRUMENT=DIR runs another copy of the instrument, as with bench/run.sh.
INSTRUMENT = os.environ.get("BENCH_INSTRUMENT", os.path.join(BENCH, "loadgen"))
PYTHON = os.environ.get("PYTHON", os.path.join(REPO, ".venv", "bin", "python"))
SERVERS = os.path.join(BENCH, "servers")
sys.path.insert(0, SERVERS)
# Its connect command subscribes through its token's channels claim, on every transport.
from wavecast_serve_channels import CONNECT as SERVE_CONNECT, PUBLISHER_PORT_OFFSET  # noqa: E402

CHANNEL = "bench"
SUB_INIT = '{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"' + CHANNEL + '"}}'
UNWRAP = '{"push":{"channel":"' + CHANNEL + '","pub":{"data":"'
# 1,000 channels, bench0 ... bench999: subscriber i on bench<i mod 1000> (the loadgen's "{v}").
CHANNELS = 1000
MANY_SUB_INIT = SUB_INIT.replace(CHANNEL, CHANNEL + "{v}")
MANY_UNWRAP = UNWRAP.replace(CHANNEL, CHANNEL + "{v}")
# Ten distinct filters, one per group of subscribers ("{v}", the loadgen's --sub-init-variants),
# that every publication of ``wavecast_channels.py --tags`` (tag k=x) passes: each subscriber
# gets every publication, and the fan-out evaluates ten filters and sends ten groups.
FILTERED_SUB_INIT = (
    '{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"'
    + CHANNEL
    + '","tf":{"key":"k","cmp":"neq","val":"v{v}"}}}'
)

#: Socket.IO: the event that joins the room, acknowledged (``431["ok"]``), and the event that
#: each publication is: ``42["msg","<payload>"]``.
SIO_JOIN = '421["join","' + CHANNEL + '"]'
SIO_JOINED = '431["ok"]'
SIO_FANOUT = ["--socketio", "--sub-init", SIO_JOIN, "--pub-path", "/publish", "--unwrap", '42["msg","']
SIO_FANOUT += ["--unwrap-suffix", '"]']
#: What tells a Centrifugo client that it has joined its channel: the subscribe command's reply.
SUBSCRIBED = '{"id":2,"subscribe"'
#: The servers of the room and join scenarios; the first is what the others are compared with.
ROOM_PEERS = ["wavecast-channels", "node-socketio", "python-socketio", "python-socketio-uvicorn"]


def load_runner() -> Any:
    """The instrument's run.py, as a module."""
    path = os.path.join(INSTRUMENT, "run.py")
    spec = importlib.util.spec_from_file_location("ws_bench_run", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"bench/realtime.py: no ws-bench instrument at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def scenarios(a: argparse.Namespace) -> list[dict[str, Any]]:
    w, d, win, k = str(a.warmup), str(a.duration), str(a.window), str(a.concurrency)

    def fanout(n: int) -> list[str]:
        # A slow server drains 16 messages to 10,000 subscribers in seconds: a generous timeout.
        return ["fanout", "-n", str(n), "-s", "32", "--text", "-W", win, "-k", k, "-w", w, "-t", d, "--timeout", "30"]

    channel = ["--path", "/connection/websocket", "--pub-path", "/publish", "--sub-init", SUB_INIT, "--unwrap", UNWRAP]
    filtered = [*channel[:5], FILTERED_SUB_INIT, "--sub-init-variants", "10", "--unwrap", UNWRAP]
    raw, channels = ["websockets", "wavecast"], ["wavecast-channels"]

    def serve(transport: str) -> list[str]:
        path = "/connection/" + ("websocket" if transport == "ws" else transport)
        return [
            *("--transport", transport, "--path", path, "--sub-init", SERVE_CONNECT, "--unwrap", UNWRAP),
            *("--pub-path", "/publish", "--pub-port-offset", str(PUBLISHER_PORT_OFFSET)),
        ]

    def rooms(key: str, common: list[str], centrifugo: list[str], socketio: list[str], **extra: Any) -> dict[str, Any]:
        # One scenario, each server's clients speaking its own protocol.
        by_peer = {peer: common + (socketio if "socketio" in peer else centrifugo) for peer in ROOM_PEERS}
        return dict(key=key, args=by_peer[ROOM_PEERS[0]], args_by_peer=by_peer, peers=list(ROOM_PEERS), **extra)

    def room_fanout(n: int, window: int) -> list[str]:
        # python-socketio takes seconds to send a window to 1,000 members (W x N / about 10,000 a
        # second): a warmup that sees the first window out, and time to drain the last one.
        args = fanout(n)
        args[args.index("-W") + 1], args[args.index("-w") + 1] = str(window), str(max(a.warmup, 5.0))
        return [*args[: args.index("--timeout")], "--timeout", "90", "--connect-timeout", "240"]

    joined = ["connect", "-n", str(a.conns), "-k", k, "-H", str(a.hold), "--connect-timeout", "240"]
    subscribed, sio_joined = ["--join-reply", SUBSCRIBED], ["--join-reply", SIO_JOINED]
    room = dict(metric="deliveries_per_s", unit="deliv/s")
    join = dict(metric="conns_per_s", unit="conn/s", rss=True)
    subscribe = ["--path", "/connection/websocket", "--sub-init", SUB_INIT, *subscribed]
    served = [
        dict(
            key=f"ch{n}-{name}",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=fanout(count) + serve(transport),
            peers=["wavecast-serve"],
            versus=None if transport == "ws" else f"ch{n}-serve",
        )
        for n, count in (("1k", 1000), ("10k", 10000))
        for name, transport in (("serve", "ws"), ("http", "http_stream"), ("sse", "sse"))
    ]
    return [
        dict(key="fan1k", metric="deliveries_per_s", unit="deliv/s", args=fanout(1000), peers=raw),
        dict(key="fan10k", metric="deliveries_per_s", unit="deliv/s", args=fanout(10000), peers=raw),
        dict(key="ch1k", metric="deliveries_per_s", unit="deliv/s", args=fanout(1000) + channel, peers=channels),
        dict(key="ch10k", metric="deliveries_per_s", unit="deliv/s", args=fanout(10000) + channel, peers=channels),
        dict(
            key="ch10k-redis",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=fanout(10000) + channel,
            peers=["wavecast-redis"],
        ),
        dict(
            key="xnode10k",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=fanout(10000) + channel + ["--alt-port-offset", "1"],
            peers=["wavecast-2-nodes", "wavecast-2-nodes-nats", "wavecast-2-nodes-shards", "wavecast-2-nodes-cluster"],
        ),
        dict(
            key="xnode1000ch",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=[
                *fanout(10000),
                *channel[:5],
                *(MANY_SUB_INIT, "--sub-init-variants", str(CHANNELS), "--unwrap", MANY_UNWRAP),
                *("--alt-port-offset", "1"),
            ],
            peers=[
                "wavecast-2-nodes-1000ch",
                "wavecast-2-nodes-1000ch-nats",
                "wavecast-2-nodes-1000ch-shards",
                "wavecast-2-nodes-1000ch-cluster",
            ],
        ),
        dict(
            key="ch10k-recovery",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=fanout(10000) + channel,
            peers=["wavecast-channels-recovery"],
        ),
        dict(
            key="ch10k-tags",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=fanout(10000) + channel,
            peers=["wavecast-channels-tags"],
        ),
        dict(
            key="ch10k-tags10",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=fanout(10000) + filtered,
            peers=["wavecast-channels-tags"],
        ),
        *served,
        # Every subscriber has its subscribe reply (or its join's ack) before the publisher comes.
        rooms("room1k", room_fanout(1000, a.window), channel + subscribed, SIO_FANOUT + sio_joined, **room),
        # A window of 4 to 10,000, for everyone: python-socketio takes seconds to send one message
        # to them all. Its slower server (uvicorn) is left out: 1,000 say enough about it.
        {
            **rooms("room10k", room_fanout(10000, 4), channel + subscribed, SIO_FANOUT + sio_joined, **room),
            "peers": ROOM_PEERS[:3],
        },
        # And wavecast without the cyclic collector, which is the tail of its connect latency.
        {
            **rooms("join10k", joined, subscribe, ["--socketio", "--sub-init", SIO_JOIN, *sio_joined], **join),
            "peers": [*ROOM_PEERS, "wavecast-channels-gc-off"],
        },
    ]


def snapshot(run: Any, ref: str) -> tuple[str, str]:
    """The short hash of ``ref`` and the src/ of a snapshot of it, built once under BENCH_HOME."""
    sha = subprocess.run(
        ["git", "-C", REPO, "rev-parse", "--short=12", f"{ref}^{{commit}}"], check=True, capture_output=True, text=True
    ).stdout.strip()
    root = os.path.join(run.BENCH_HOME, "wavecast-src", sha)
    if not os.path.isdir(os.path.join(root, "src", "wavecast")):
        os.makedirs(root, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", REPO, "archive", sha, "src", "hatch_build.py"], check=True, capture_output=True
        )
        subprocess.run(["tar", "-x", "-C", root], input=archive.stdout, check=True)
        subprocess.run([PYTHON, os.path.join(root, "hatch_build.py"), root], check=True, stdout=subprocess.DEVNULL)
    return sha, os.path.join(root, "src")


def peers(run: Any, ref: tuple[str, str] | None = None) -> dict[str, list[str]]:
    channels = os.path.join(SERVERS, "wavecast_channels.py")
    cluster = os.path.join(SERVERS, "wavecast_cluster.py")
    snapshot_peers: dict[str, list[str]] = {}
    python_socketio = [run.PY, "peers/python_socketio_server.py", "--server"]
    if ref is not None:
        sha, src = ref
        at = ["env", f"PYTHONPATH={src}", PYTHON, channels]
        snapshot_peers = {
            f"wavecast-channels@{sha}": [*at, "--port", "{port}"],
            f"wavecast-channels-recovery@{sha}": [*at, "--history", "--port", "{port}"],
        }
    return snapshot_peers | {
        "websockets": [run.PY, "peers/websockets_server.py", "--port", "{port}"],
        "wavecast": [PYTHON, os.path.join(SERVERS, "wavecast_server.py"), "--port", "{port}"],
        "wavecast-channels": [PYTHON, channels, "--port", "{port}"],
        "wavecast-channels-recovery": [PYTHON, channels, "--history", "--port", "{port}"],
        "wavecast-channels-tags": [PYTHON, channels, "--tags", "--port", "{port}"],
        "wavecast-channels-gc-off": [PYTHON, channels, "--gc-threshold", "0", "--port", "{port}"],
        "wavecast-redis": [PYTHON, cluster, "--nodes", "1", "--port", "{port}"],
        "wavecast-2-nodes": [PYTHON, cluster, "--nodes", "2", "--port", "{port}"],
        "wavecast-2-nodes-nats": [PYTHON, cluster, "--nodes", "2", "--engine", "nats", "--port", "{port}"],
        "wavecast-2-nodes-1000ch": [PYTHON, cluster, "--nodes", "2", "--channels", str(CHANNELS), "--port", "{port}"],
        "wavecast-2-nodes-1000ch-nats": [
            *(PYTHON, cluster, "--nodes", "2", "--channels", str(CHANNELS), "--engine", "nats", "--port", "{port}")
        ],
        "wavecast-2-nodes-shards": [PYTHON, cluster, "--nodes", "2", "--engine", "redis-shards", "--port", "{port}"],
        "wavecast-2-nodes-cluster": [PYTHON, cluster, "--nodes", "2", "--engine", "redis-cluster", "--port", "{port}"],
        "wavecast-2-nodes-1000ch-shards": [
            *(PYTHON, cluster, "--nodes", "2", "--channels", str(CHANNELS), "--engine", "redis-shards"),
            *("--port", "{port}"),
        ],
        "wavecast-2-nodes-1000ch-cluster": [
            *(PYTHON, cluster, "--nodes", "2", "--channels", str(CHANNELS), "--engine", "redis-cluster"),
            *("--port", "{port}"),
        ],
        "wavecast-serve": [PYTHON, os.path.join(SERVERS, "wavecast_serve_channels.py"), "--port", "{port}"],
        # The Socket.IO peers run in the instrument's directory, from bench/loadgen/setup.sh's installs.
        "node-socketio": ["node", "peers/node_socketio_server.js", "{port}"],
        "python-socketio": [*python_socketio, "aiohttp", "--port", "{port}"],
        "python-socketio-uvicorn": [*python_socketio, "uvicorn", "--port", "{port}"],
    }


def values(results: list[dict[str, Any]], peer: str, key: str, field: str = "deliveries_per_s") -> list[float]:
    """``field`` of each successful trial of ``peer`` in scenario ``key``."""
    return [r[field] for r in results if r["peer"] == peer and r["scenario"] == key and r.get("ok") and field in r]


def socketio_versions(run: Any) -> str:
    """The Socket.IO peers' versions, as the runner's interpreter and node find them."""
    code = "import importlib.metadata as m\nfor p in ('python-socketio', 'aiohttp', 'uvicorn'): print(p, m.version(p))"
    found = subprocess.run([run.PY, "-c", code], capture_output=True, text=True).stdout.split()
    node = subprocess.run(
        ["node", "-p", "process.version + ' socket.io ' + require('socket.io/package.json').version"],
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": run.NODE_MODULES},
    ).stdout.split()
    words = [*found, *(["node", *node] if node else [])]
    return ", ".join(f"{name} {version}" for name, version in zip(words[::2], words[1::2], strict=False))


def rooms_markdown(results: list[dict[str, Any]], scs: list[dict[str, Any]]) -> list[str]:
    """The room and join scenarios: each server beside wavecast-channels, in the same run."""
    lines = [
        "",
        "Rooms and joins: median per server, ratio against wavecast-channels of the same scenario and run;",
        "/CPU-s is the main figure per second of the server's CPU (join10k: the CPU of the connect phase).",
        "",
        "| scenario | server | median | spread | x wavecast | per server CPU-s | p50 / p99 ms | KiB per joined client "
        "| server CPU % | bg % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in scs:
        metric, unit = sc["metric"], sc["unit"]
        latency = ("hs_p50_us", "hs_p99_us") if metric == "conns_per_s" else ("lat_p50_us", "lat_p99_us")
        base = values(results, ROOM_PEERS[0], sc["key"], metric)
        for peer in sc["peers"]:
            vals = values(results, peer, sc["key"], metric)
            if not vals:
                lines.append(f"| {sc['key']} | {peer} | - | - | - | - | - | - | - | - |")
                continue
            med = statistics.median(vals)
            cpu = statistics.median(values(results, peer, sc["key"], "server_cpu_pct"))
            rss = values(results, peer, sc["key"], "rss_kib_per_conn")
            p50, p99 = (statistics.median(values(results, peer, sc["key"], f)) / 1000 for f in latency)
            cells = [
                sc["key"],
                peer,
                f"{med:,.0f} {unit}",
                f"{100 * (max(vals) - min(vals)) / med:.0f}% (n={len(vals)})" if len(vals) > 1 else "-",
                f"{med / statistics.median(base):.2f}x" if base else "-",
                f"{100 * med / cpu:,.0f}" if cpu > 0 else "-",
                f"{p50:.1f} / {p99:.1f}",
                f"{statistics.median(rss):.1f}" if rss else "-",
                f"{cpu:.0f}",
                f"{statistics.median(values(results, peer, sc['key'], 'bg_cpu_pct')):.0f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(results: list[dict[str, Any]], a: argparse.Namespace, scs: list[dict[str, Any]], elapsed: float) -> str:
    def values(peer: str, key: str, field: str = "deliveries_per_s") -> list[float]:
        return [r[field] for r in results if r["peer"] == peer and r["scenario"] == key and r.get("ok")]

    room_scs = [sc for sc in scs if "args_by_peer" in sc]
    scs = [sc for sc in scs if "args_by_peer" not in sc]
    title = [
        f"# Channel fan-out ({time.strftime('%Y-%m-%d %H:%M')}, {a.reps} rep(s), warmup {a.warmup}s + "
        f"{a.duration}s per trial, window {a.window}, server on CPU 0, loadgen on CPU 1, {elapsed / 60:.1f} min)",
    ]
    lines = [
        "",
        "Median deliveries/s (spread = (max - min) / median); the ratio is against websockets' raw",
        "broadcast to the same number of subscribers in this run.",
        "",
        "| scenario | server | deliveries/s | spread | x websockets raw | x WebSocket | p50 / p99 latency ms "
        "| server CPU % | bg % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for sc in scs:
        n = "1k" if "1k" in sc["key"] else "10k"
        baseline = values("websockets", f"fan{n}")
        base = statistics.median(baseline) if baseline else None
        for peer in sc["peers"]:
            vals = values(peer, sc["key"])
            if not vals:
                lines.append(f"| {sc['key']} | {peer} | - | - | - | - | - | - | - |")
                continue
            med = statistics.median(vals)
            spread = f"{100 * (max(vals) - min(vals)) / med:.0f}% (n={len(vals)})" if len(vals) > 1 else "-"
            ratio = f"{med / base:.2f}x" if base else "-"
            # A fallback transport beside the WebSocket of the same server, in this run.
            websocket = values(peer, sc["versus"]) if sc.get("versus") else []
            versus = f"{med / statistics.median(websocket):.2f}x" if websocket else "-"
            p50 = statistics.median(values(peer, sc["key"], "lat_p50_us")) / 1000
            p99 = statistics.median(values(peer, sc["key"], "lat_p99_us")) / 1000
            cpu = statistics.median(values(peer, sc["key"], "server_cpu_pct"))
            bg = statistics.median(values(peer, sc["key"], "bg_cpu_pct"))
            latency = f"{p50:.1f} / {p99:.1f}"
            cells = [sc["key"], peer, f"{med:,.0f}", spread, ratio, versus, latency, f"{cpu:.0f}", f"{bg:.0f}"]
            lines.append("| " + " | ".join(cells) + " |")
    lines = title + (lines if scs else [])
    if room_scs:
        lines += rooms_markdown(results, room_scs)
    fails = [r for r in results if not r.get("ok")]
    if fails:
        lines += ["", "Failures:", ""]
        lines += [f"- {r['peer']} {r['scenario']} rep {r['rep']}: {str(r.get('error'))[:300]}" for r in fails]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument(
        "--scenarios",
        nargs="*",
        help="subset of: fan1k fan10k ch1k ch10k ch10k-redis xnode10k xnode1000ch ch10k-recovery ch10k-tags "
        "ch10k-tags10 "
        "ch1k-serve ch1k-http ch1k-sse ch10k-serve ch10k-http ch10k-sse room1k room10k join10k",
    )
    parser.add_argument("--wait-quiet", type=float, default=0.0, help="wait up to S seconds for an idle machine")
    parser.add_argument("--ref", help="also measure this commit's channel fan-out, in the same run")
    parser.add_argument("--peers", nargs="*", help="only these servers (default: every scenario's)")
    args = parser.parse_args()

    subprocess.run(["make", "-s", "-C", INSTRUMENT], check=True)
    run = load_runner()
    run.exit_on_sigterm()
    # The runner's own defaults for what this driver doesn't set.
    defaults = dict(
        server_cpu="0",
        client_cpu="1",
        base_port=9300,
        out_dir=os.path.join(run.BENCH_HOME, "results"),
        md=None,
        start_timeout=20.0,
        settle=0.5,
        # python-socketio may take minutes to connect and serve 10,000 on a busy machine.
        trial_timeout=420.0,
        rss_settle=1.0,
        quiet_threshold=15.0,
        wait_quiet=args.wait_quiet,
        hold=2.0,
        conns=10000,
    )
    a = argparse.Namespace(**{**defaults, **vars(args)})
    scs = [s for s in scenarios(a) if not args.scenarios or s["key"] in args.scenarios]
    if args.peers:
        scs = [{**s, "peers": [p for p in s["peers"] if p in args.peers]} for s in scs]
        scs = [s for s in scs if s["peers"]]
    ref = snapshot(run, args.ref) if args.ref else None
    commands = peers(run, ref)
    if ref is not None:
        for sc in scs:
            sc["peers"] += [f"{peer}@{ref[0]}" for peer in sc["peers"] if f"{peer}@{ref[0]}" in commands]
    runner = run.Runner(a)
    results: list[dict[str, Any]] = []
    start = time.time()
    for rep in range(1, a.reps + 1):
        for sc in scs:
            order = sc["peers"][(rep - 1) % len(sc["peers"]) :] + sc["peers"][: (rep - 1) % len(sc["peers"])]
            for peer in order:
                own = {**sc, "args": sc.get("args_by_peer", {}).get(peer, sc["args"])}
                result = runner.trial(peer, commands[peer], own, rep)
                results.append(result)
                status = "ok" if result.get("ok") else "FAIL " + str(result.get("error", ""))[:160]
                print(
                    f"[{time.time() - start:5.0f}s] rep {rep} {sc['key']:14s} {peer:26s} "
                    f"{result.get(sc['metric']) or 0:>12,.0f} {sc['unit']} cpu={result.get('server_cpu_pct')}% "
                    f"bg={result.get('bg_cpu_pct')}% {status}",
                    file=sys.stderr,
                    flush=True,
                )
    stamp = time.strftime("%Y%m%d-%H%M%S")
    os.makedirs(os.path.join(BENCH, "results"), exist_ok=True)
    md = markdown(results, a, scs, time.time() - start)
    if any("args_by_peer" in sc for sc in scs):
        md += f"\nVersions: {socketio_versions(run)}\n"
    md += f"Load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    md += f"\nCommand: `{' '.join(['bench/realtime.py', *sys.argv[1:]])}`\n"
    with open(os.path.join(BENCH, "results", f"realtime-{stamp}.md"), "w") as f:
        f.write(md)
    with open(os.path.join(BENCH, "results", f"realtime-{stamp}.jsonl"), "w") as f:
        for result in results:
            f.write(json.dumps(result) + "\n")
    print(md)


if __name__ == "__main__":
    main()
