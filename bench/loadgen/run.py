#!/usr/bin/env python3
"""run.py - run every scenario against every available peer, side by side, and print a markdown table.

Each trial: start a fresh server pinned to --server-cpu (taskset), wait for its port, run the loadgen pinned to
--client-cpu, parse its JSON line, stop the server by PID (SIGTERM, then SIGKILL). Peers are interleaved inside
each scenario (and their order rotated per repetition) so that machine drift hits all of them alike.
Connect scenario: server VmRSS (/proc/PID/status) is read before the loadgen starts and while the loadgen holds
N idle connections; (after - before) / N = KiB per idle connection.
Other processes' CPU use during each trial is measured from /proc and reported (bg_cpu_pct): if it is not ~0,
the machine was shared and the trial is noisy.

Raw results: $BENCH_HOME/results/run-<stamp>.jsonl, table: run-<stamp>.md (and stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_HOME = os.environ.get("BENCH_HOME", os.path.expanduser("~/.cache/ws-bench"))
BUILD = os.environ.get("BUILD", os.path.join(HERE, "build"))
PY = os.environ.get("BENCH_PY", os.path.join(BENCH_HOME, "venv", "bin", "python"))
if not os.path.exists(PY):
    PY = sys.executable
NODE_MODULES = os.environ.get("BENCH_NODE_MODULES", os.path.join(BENCH_HOME, "node", "node_modules"))
LOADGEN = os.path.join(BUILD, "loadgen")

# name -> argv ({port} is substituted). Add a server here, or pass --server 'name=cmd --port {port}'.
PEERS = [
    ("websockets", [PY, "peers/websockets_server.py", "--port", "{port}"]),
    ("websockets+uvloop", [PY, "peers/websockets_server.py", "--uvloop", "--port", "{port}"]),
    ("picows", [PY, "peers/picows_server.py", "--port", "{port}"]),
    ("aiohttp", [PY, "peers/aiohttp_server.py", "--port", "{port}"]),
    ("node-ws", ["node", "peers/node_ws_server.js", "{port}"]),
    ("socketify", [PY, "peers/socketify_server.py", "--port", "{port}"]),
    ("refserver", [os.path.join(BUILD, "refserver"), "{port}"]),
]
BASELINE = "websockets"


def scenarios(a):
    w, d = str(a.warmup), str(a.duration)
    win, k = str(a.window), str(a.concurrency)
    return [
        dict(
            key="echo32",
            title="echo 32 B text, 100 conns x depth 16",
            metric="msgs_per_s",
            unit="msg/s",
            args=["echo", "-c", "100", "-d", "16", "-s", "32", "--text", "-w", w, "-t", d],
        ),
        dict(
            key="echo64k",
            title="echo 64 KiB binary, 10 conns x depth 2",
            metric="mb_per_s",
            unit="MB/s",
            args=["echo", "-c", "10", "-d", "2", "-s", "65536", "--binary", "-w", w, "-t", d],
        ),
        dict(
            key="echo1m",
            title="echo 1 MiB binary, 1 conn x depth 1",
            metric="mb_per_s",
            unit="MB/s",
            args=["echo", "-c", "1", "-d", "1", "-s", "1048576", "--binary", "-w", w, "-t", d],
        ),
        dict(
            key="fan1k",
            title="fan-out 32 B text to 1,000 subs",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=["fanout", "-n", "1000", "-s", "32", "--text", "-W", win, "-k", k, "-w", w, "-t", d],
        ),
        dict(
            key="fan10k",
            title="fan-out 32 B text to 10,000 subs",
            metric="deliveries_per_s",
            unit="deliv/s",
            args=["fanout", "-n", "10000", "-s", "32", "--text", "-W", win, "-k", k, "-w", w, "-t", d],
        ),
        dict(
            key="conn10k",
            title="connect 10,000 conns (+ idle RSS)",
            metric="conns_per_s",
            unit="conn/s",
            args=["connect", "-n", str(a.conns), "-k", k, "-H", str(a.hold)],
            rss=True,
        ),
    ]


def port_open(port):
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def vmrss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def proc_ticks():
    """pid -> utime+stime (clock ticks) for every process (incl. kernel threads)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
            rest = s[s.rindex(")") + 2 :].split()
            out[int(d)] = int(rest[11]) + int(rest[12])
        except (OSError, ValueError, IndexError):
            pass
    return out


def busy_pct(interval=0.5):
    """CPU busy over `interval` s summed over all CPUs, in % of one CPU (from /proc/stat)."""

    def snap():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v) - v[3] - v[4], sum(v)

    b0, _ = snap()
    time.sleep(interval)
    b1, _ = snap()
    return 100.0 * (b1 - b0) / os.sysconf("SC_CLK_TCK") / interval


def wait_quiet(max_wait, threshold):
    """Wait until the machine is idle (nothing of ours runs between trials). Returns last busy %."""
    t_end = time.time() + max_wait
    b = busy_pct()
    while b > threshold and time.time() < t_end:
        b = busy_pct(1.0)
    return b


def exit_on_sigterm():
    """Turn SIGTERM into SystemExit, so that a trial's ``finally`` stops its server and loadgen."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def stop(proc, grace=3.0):
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
    except ProcessLookupError:
        pass


def peer_available(name, argv):
    exe = argv[0]
    if exe == PY:
        mod = {
            "websockets": "websockets",
            "websockets+uvloop": "uvloop",
            "picows": "picows",
            "aiohttp": "aiohttp",
            "socketify": "socketify",
        }.get(name)
        if mod:
            r = subprocess.run([PY, "-c", f"import {mod}"], capture_output=True, text=True)
            if r.returncode:
                return f"python module {mod} not importable: {r.stderr.strip().splitlines()[-1:]}"
    elif exe == "node":
        r = subprocess.run(
            ["node", "-e", "require('ws')"],
            capture_output=True,
            text=True,
            env={**os.environ, "NODE_PATH": NODE_MODULES},
        )
        if r.returncode:
            return "node or npm package ws not available (run setup.sh)"
    elif not (os.path.exists(exe) or shutil.which(exe)):
        return f"{exe} not found (not built?)"
    return None


def versions():
    v = {}
    code = (
        "import importlib.metadata as m\n"
        "for p in ['websockets','picows','aiohttp','uvloop','socketify']:\n"
        "  try: print(p, m.version(p))\n"
        "  except Exception: print(p, '-')\n"
        "import sys; print('python', sys.version.split()[0])"
    )
    r = subprocess.run([PY, "-c", code], capture_output=True, text=True)
    for line in r.stdout.splitlines():
        k, _, val = line.partition(" ")
        v[k] = val
    r = subprocess.run(
        ["node", "-e", "console.log(process.version, require('ws/package.json').version)"],
        capture_output=True,
        text=True,
        env={**os.environ, "NODE_PATH": NODE_MODULES},
    )
    if r.returncode == 0:
        nv, wv = r.stdout.split()
        v["node"], v["ws"] = nv, wv
    return v


class Runner:
    def __init__(self, a):
        self.a = a
        self.port = a.base_port
        stamp = time.strftime("%Y%m%d-%H%M%S")
        os.makedirs(a.out_dir, exist_ok=True)
        self.logdir = os.path.join(a.out_dir, "logs-" + stamp)
        os.makedirs(self.logdir, exist_ok=True)
        self.jsonl = os.path.join(a.out_dir, f"run-{stamp}.jsonl")
        self.mdpath = a.md or os.path.join(a.out_dir, f"run-{stamp}.md")

    def next_port(self):
        for _ in range(200):
            self.port += 1
            if not port_open(self.port):
                return self.port
        raise RuntimeError("no free port")

    def trial(self, peer, argv, sc, rep):
        a = self.a
        port = self.next_port()
        env = {**os.environ, "NODE_PATH": NODE_MODULES, "PORT": str(port), "PYTHONUNBUFFERED": "1"}
        log = open(os.path.join(self.logdir, f"{peer}-{sc['key']}-{rep}.log"), "w")  # noqa: SIM115 - closed in finally
        cmd = ["taskset", "-c", a.server_cpu] + [x.format(port=port) for x in argv]
        res = dict(peer=peer, scenario=sc["key"], rep=rep, ok=False)
        pre_busy = wait_quiet(a.wait_quiet, a.quiet_threshold) if a.wait_quiet > 0 else None
        srv = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        lg = None
        try:
            t_end = time.time() + a.start_timeout
            while time.time() < t_end and not port_open(port):
                if srv.poll() is not None:
                    break
                time.sleep(0.05)
            if srv.poll() is not None or not port_open(port):
                res["error"] = f"server did not start listening on {port} (see {log.name})"
                return res
            time.sleep(a.settle)
            rss0 = vmrss_kib(srv.pid)
            ticks0 = proc_ticks()
            t0 = time.time()
            lcmd = (
                ["taskset", "-c", a.client_cpu, LOADGEN]
                + sc["args"]
                + ["--port", str(port), "--server-pid", str(srv.pid), "--label", f"{peer}/{sc['key']}/{rep}", "-q"]
            )
            lg = subprocess.Popen(lcmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE)
            killer = threading.Timer(a.trial_timeout, lambda: lg.poll() is None and os.kill(lg.pid, signal.SIGKILL))
            killer.start()
            rss1 = None
            result = None
            human = ""
            for line in lg.stdout:
                if line.startswith("# HOLD"):
                    time.sleep(a.rss_settle)
                    rss1 = vmrss_kib(srv.pid)
                elif line.startswith("{"):
                    try:
                        result = json.loads(line)
                    except ValueError:
                        pass
                elif line.startswith("# "):
                    human = line[2:].strip()
            lg.wait()
            killer.cancel()
            stderr = lg.stderr.read()
            wall = time.time() - t0
            ticks1 = proc_ticks()
            ours = {srv.pid, lg.pid, os.getpid()}
            bg = sum(t - ticks0.get(p, 0) for p, t in ticks1.items() if p not in ours)
            res["bg_cpu_pct"] = round(100.0 * bg / os.sysconf("SC_CLK_TCK") / wall, 1)
            if result is None:
                res["error"] = f"loadgen produced no result (rc={lg.returncode}): {stderr.strip()[-300:]}"
                return res
            res.update(result)
            res["peer"], res["scenario"], res["rep"] = peer, sc["key"], rep
            res["pre_busy_pct"] = None if pre_busy is None else round(pre_busy, 1)
            res["human"] = human
            if srv.poll() is not None:
                res["ok"] = False
                res["error"] = (res.get("error") or "") + f" [server exited rc={srv.returncode}]"
            if sc.get("rss") and rss0 is not None and rss1 is not None and result.get("open"):
                res["rss_before_kib"], res["rss_after_kib"] = rss0, rss1
                res["rss_kib_per_conn"] = round((rss1 - rss0) / result["open"], 2)
            return res
        finally:
            if lg is not None:
                stop(lg)
            stop(srv)
            log.close()

    def run(self):
        a = self.a
        peers = [(n, argv) for n, argv in PEERS + a.extra if (not a.peers or n in a.peers)]
        avail = []
        self.skipped = {}
        for n, argv in peers:
            why = peer_available(n, argv)
            if why:
                self.skipped[n] = why
                print(f"skip {n}: {why}", file=sys.stderr)
            else:
                avail.append((n, argv))
        scs = [s for s in scenarios(a) if not a.scenarios or s["key"] in a.scenarios]
        self.scs, self.peers = scs, [n for n, _ in avail]
        results = []
        t_start = time.time()
        with open(self.jsonl, "w") as out:
            for rep in range(1, a.reps + 1):
                for sc in scs:
                    rot = (rep - 1) % len(avail)
                    for n, argv in avail[rot:] + avail[:rot]:
                        r = self.trial(n, argv, sc, rep)
                        for _ in range(a.retry_noisy):  # re-run trials disturbed by other processes
                            if (r.get("bg_cpu_pct") or 0) <= a.noisy_threshold:
                                break
                            print(
                                f"         noisy (bg={r.get('bg_cpu_pct')}%), retrying {n} {sc['key']}",
                                file=sys.stderr,
                                flush=True,
                            )
                            r2 = self.trial(n, argv, sc, rep)
                            if r2.get("ok") and (r2.get("bg_cpu_pct") or 0) < (r.get("bg_cpu_pct") or 0):
                                r = r2
                        results.append(r)
                        out.write(json.dumps(r) + "\n")
                        out.flush()
                        val = r.get(sc["metric"])
                        extra = f" rss/conn={r['rss_kib_per_conn']} KiB" if "rss_kib_per_conn" in r else ""
                        status = "ok" if r.get("ok") else "FAIL " + str(r.get("error", ""))[:160]
                        print(
                            f"[{time.time() - t_start:6.0f}s] rep {rep} {sc['key']:8s} {n:18s} "
                            f"{fmt(val)} {sc['unit']}{extra}  srv_cpu={r.get('server_cpu_pct')}% "
                            f"lg_cpu={r.get('client_cpu_pct')}% bg={r.get('bg_cpu_pct')}% {status}",
                            file=sys.stderr,
                            flush=True,
                        )
        self.results = results
        md = self.markdown(results, time.time() - t_start)
        with open(self.mdpath, "w") as f:
            f.write(md)
        print(md)
        print(f"\nraw: {self.jsonl}\ntable: {self.mdpath}\nserver logs: {self.logdir}", file=sys.stderr)

    def cell(self, results, peer, sc, field):
        vals = [
            r[field]
            for r in results
            if r["peer"] == peer and r["scenario"] == sc["key"] and r.get("ok") and r.get(field) is not None
        ]
        return vals

    def markdown(self, results, elapsed):
        a = self.a
        L = []
        L.append(
            f"# ws-bench results ({time.strftime('%Y-%m-%d %H:%M')}, {a.reps} rep(s), "
            f"warmup {a.warmup}s + {a.duration}s per trial, server on CPU {a.server_cpu}, "
            f"loadgen on CPU {a.client_cpu}, {elapsed / 60:.1f} min)\n"
        )
        v = versions()
        L.append("Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + "\n")
        L.append(
            f"Median of up to {a.reps} run(s); ratio (x) is relative to the `{BASELINE}` row of the same column.\n"
        )
        hdr = ["peer"] + [f"{s['key']} {s['unit']}" for s in self.scs]
        has_rss = any(s.get("rss") for s in self.scs)
        if has_rss:
            hdr.append("idle KiB/conn")
        L.append("| " + " | ".join(hdr) + " |")
        L.append("|" + "---|" * len(hdr))
        med = {}
        for p in self.peers:
            for s in self.scs:
                vals = self.cell(results, p, s, s["metric"])
                med[(p, s["key"])] = statistics.median(vals) if vals else None
                if s.get("rss"):
                    rv = self.cell(results, p, s, "rss_kib_per_conn")
                    med[(p, "rss")] = statistics.median(rv) if rv else None
        for p in self.peers:
            row = [p]
            for s in self.scs:
                m, b = med.get((p, s["key"])), med.get((BASELINE, s["key"]))
                row.append(f"{fmt(m)} ({m / b:.2f}x)" if m is not None and b else fmt(m))
            if has_rss:
                m, b = med.get((p, "rss")), med.get((BASELINE, "rss"))
                row.append(f"{m:.1f} ({m / b:.2f}x)" if m is not None and b else fmt(m))
            L.append("| " + " | ".join(row) + " |")
        L.append("")
        L.append(
            "Latency, median of runs: p50 / p99 in ms (echo: round trip; fan-out: publish -> delivery; "
            "connect: handshake)\n"
        )
        L.append("| peer | " + " | ".join(s["key"] for s in self.scs) + " |")
        L.append("|" + "---|" * (len(self.scs) + 1))
        for p in self.peers:
            row = [p]
            for s in self.scs:
                f50, f99 = ("hs_p50_us", "hs_p99_us") if s["key"].startswith("conn") else ("lat_p50_us", "lat_p99_us")
                a50, a99 = self.cell(results, p, s, f50), self.cell(results, p, s, f99)
                row.append(f"{statistics.median(a50) / 1000:.2f} / {statistics.median(a99) / 1000:.2f}" if a50 else "-")
            L.append("| " + " | ".join(row) + " |")
        L.append("")
        L.append(
            "CPU during the measured window, median: server % of CPU "
            f"{a.server_cpu} / loadgen % of CPU {a.client_cpu} / other processes % (bg)\n"
        )
        L.append("| peer | " + " | ".join(s["key"] for s in self.scs) + " |")
        L.append("|" + "---|" * (len(self.scs) + 1))
        for p in self.peers:
            row = [p]
            for s in self.scs:
                sv, cv = self.cell(results, p, s, "server_cpu_pct"), self.cell(results, p, s, "client_cpu_pct")
                bv = self.cell(results, p, s, "bg_cpu_pct")
                row.append(
                    f"{statistics.median(sv):.0f} / {statistics.median(cv):.0f} / {statistics.median(bv):.0f}"
                    if sv and cv and bv
                    else "-"
                )
            L.append("| " + " | ".join(row) + " |")
        L.append("")
        if a.reps > 1:
            L.append("Spread across runs: (max - min) / median of the main metric, % (n = successful runs)\n")
            L.append("| peer | " + " | ".join(s["key"] for s in self.scs) + " |")
            L.append("|" + "---|" * (len(self.scs) + 1))
            for p in self.peers:
                row = [p]
                for s in self.scs:
                    vals = self.cell(results, p, s, s["metric"])
                    if len(vals) >= 2 and statistics.median(vals):
                        row.append(f"{100 * (max(vals) - min(vals)) / statistics.median(vals):.0f}% (n={len(vals)})")
                    else:
                        row.append(f"- (n={len(vals)})")
                L.append("| " + " | ".join(row) + " |")
            L.append("")
        fails = [r for r in results if not r.get("ok")]
        if fails or self.skipped:
            L.append("Failures / skips:\n")
            for n, why in self.skipped.items():
                L.append(f"- {n}: skipped: {why}")
            for r in fails:
                L.append(f"- {r['peer']} {r['scenario']} rep {r['rep']}: {str(r.get('error'))[:300]}")
            L.append("")
        return "\n".join(L) + "\n"


def fmt(v):
    if v is None:
        return "-"
    if v >= 1000:
        return f"{v:,.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=1, help="repetitions of the whole table (3 recommended)")
    ap.add_argument("--duration", type=float, default=3.0, help="measured seconds per echo/fan-out trial")
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--hold", type=float, default=2.0, help="idle hold seconds in the connect scenario")
    ap.add_argument("--conns", type=int, default=10000, help="connections in the connect scenario")
    ap.add_argument("--window", type=int, default=16, help="fan-out publisher window (messages)")
    ap.add_argument("--concurrency", type=int, default=128, help="max handshakes in flight")
    ap.add_argument("--peers", nargs="*", help="subset of peers (default: all available)")
    ap.add_argument("--scenarios", nargs="*", help="subset of: echo32 echo64k echo1m fan1k fan10k conn10k")
    ap.add_argument(
        "--server",
        action="append",
        default=[],
        metavar="NAME=CMD",
        help="extra server, e.g. 'mine=python -m mypkg.server --port {port}' (repeatable)",
    )
    ap.add_argument("--server-cpu", default="0")
    ap.add_argument("--client-cpu", default="1")
    ap.add_argument("--base-port", type=int, default=9500)
    ap.add_argument("--settle", type=float, default=0.5, help="seconds after the port opens before measuring")
    ap.add_argument("--rss-settle", type=float, default=0.5, help="seconds after HOLD before reading RSS")
    ap.add_argument("--start-timeout", type=float, default=20)
    ap.add_argument("--trial-timeout", type=float, default=240)
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="S",
        help="before each trial wait up to S s for other processes to go quiet (shared machines)",
    )
    ap.add_argument("--quiet-threshold", type=float, default=15, help="busy %% of one CPU counted as quiet")
    ap.add_argument(
        "--retry-noisy",
        type=int,
        default=0,
        metavar="N",
        help="re-run a trial up to N times when other processes used > --noisy-threshold %% CPU",
    )
    ap.add_argument("--noisy-threshold", type=float, default=25)
    ap.add_argument("--out-dir", default=os.path.join(BENCH_HOME, "results"))
    ap.add_argument("--md", help="also write the markdown table here")
    ap.add_argument("--from-jsonl", metavar="FILE", help="only render the tables from an earlier run's raw results")
    a = ap.parse_args()
    a.extra = []
    for s in a.server:
        name, _, cmd = s.partition("=")
        a.extra.append((name, cmd.split()))
        if a.peers is not None and name not in a.peers:
            a.peers.append(name)
    if a.from_jsonl:  # re-render a (possibly partial) earlier run
        r = Runner(a)
        with open(a.from_jsonl) as f:
            results = [json.loads(line) for line in f if line.strip()]
        a.reps = max(x["rep"] for x in results)
        keys = {x["scenario"] for x in results}
        r.scs = [s for s in scenarios(a) if s["key"] in keys]
        r.peers = [n for n, _ in PEERS + a.extra if any(x["peer"] == n for x in results)]
        r.skipped = {}
        md = r.markdown(results, 0)
        if a.md:
            with open(a.md, "w") as f:
                f.write(md)
        print(md)
        return
    if not os.path.exists(LOADGEN):
        sys.exit(f"{LOADGEN} not built: run `make` (or setup.sh) first")
    exit_on_sigterm()
    Runner(a).run()


if __name__ == "__main__":
    main()
