"""Profile the wavecast bench server while the ws-bench loadgen drives one scenario.

    .venv/bin/python bench/profile.py echo32 fan10k ch10k conn10k join10k [--seconds 4] [--no-uvloop] [--ref HEAD]

For each scenario, three passes run against a fresh server pinned to CPU 0 (loadgen on CPU 1):

1. py-spy (when installed), a sampler with little overhead, attached for ``--seconds`` once the
   load is steady: the share of samples per function (self and inclusive) and per line, turned
   into microseconds per message with the loadgen's throughput.
2. perf (when installed), which sees what py-spy can't: the C extensions, the interpreter and
   the kernel, by binary and by symbol.
3. cProfile, switched on and off by signals around the same steady window, so the handshakes
   and the teardown stay out: call counts per message, and the tottime and cumulative tables.

Everything lands in ``bench/profiles/<scenario>.txt``, plus the raw py-spy stacks in
``<scenario>.folded`` (one collapsed stack per line, for flamegraph.pl or speedscope).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import io
import json
import os
import platform
import pstats
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
PROFILES = os.path.join(BENCH, "profiles")
BENCH_HOME = os.environ.get("BENCH_HOME", os.path.expanduser("~/.cache/ws-bench"))
# The instrument's loadgen, built by its Makefile (BUILD= moves it, as for bench/loadgen/run.py).
LOADGEN = os.path.join(os.environ.get("BUILD", os.path.join(BENCH, "loadgen", "build")), "loadgen")

_CHANNEL = [
    "--path",
    "/connection/websocket",
    "--pub-path",
    "/publish",
    "--sub-init",
    '{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"bench"}}',
    "--unwrap",
    '{"push":{"channel":"bench","pub":{"data":"',
]

#: scenario -> (loadgen arguments, metric, unit, server script under servers/)
SCENARIOS = {
    "echo32": (
        ["echo", "-c", "100", "-d", "16", "-s", "32", "--text"],
        "msgs_per_s",
        "message echoed",
        "wavecast_server.py",
    ),
    "echo1m": (
        ["echo", "-c", "1", "-d", "1", "-s", "1048576", "--binary"],
        "msgs_per_s",
        "message echoed",
        "wavecast_server.py",
    ),
    "fan1k": (
        ["fanout", "-n", "1000", "-s", "32", "--text", "-W", "16"],
        "deliveries_per_s",
        "delivery",
        "wavecast_server.py",
    ),
    "fan10k": (
        ["fanout", "-n", "10000", "-s", "32", "--text", "-W", "16"],
        "deliveries_per_s",
        "delivery",
        "wavecast_server.py",
    ),
    # Connects, as conn10k: profile a window shorter than the ramp (~3 s) so that it sees only handshakes.
    "conn10k": (
        ["connect", "-n", "10000", "-k", "128", "-H", "1"],
        "conns_per_s",
        "connect",
        "wavecast_server.py",
    ),
    # Connect + subscribe through the real-time layer, as bench/realtime.py's join10k.
    "join10k": (
        [
            "connect",
            "-n",
            "10000",
            "-k",
            "128",
            "-H",
            "1",
            "--path",
            "/connection/websocket",
            "--sub-init",
            '{"id":1,"connect":{}}\n{"id":2,"subscribe":{"channel":"bench"}}',
            "--join-reply",
            '{"id":2,"subscribe"',
        ],
        "conns_per_s",
        "connect and subscribe",
        "wavecast_channels.py",
    ),
    "ch10k": (
        ["fanout", "-n", "10000", "-s", "32", "--text", "-W", "16", *_CHANNEL],
        "deliveries_per_s",
        "delivery",
        "wavecast_channels.py",
    ),
}

# Run the bench server with a cProfile that SIGUSR1 starts and SIGUSR2 stops and dumps.
PROFILED = """\
import cProfile, runpy, signal, sys
out, server, *args = sys.argv[1:]
profiler = cProfile.Profile()
def stop(*_):
    profiler.disable()
    profiler.dump_stats(out)
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
signal.signal(signal.SIGUSR2, stop)
sys.argv = [server, *args]
runpy.run_path(server, run_name="__main__")
"""


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Trial:
    """A server and a loadgen run; the caller profiles the server during the steady part."""

    def __init__(self, server_argv: list[str], scenario: str, duration: float) -> None:
        self.port = free_port()
        argv = [x.format(port=self.port) for x in server_argv]
        self.server = subprocess.Popen(["taskset", "-c", "0", *argv], stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not port_open(self.port):
            if self.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start on port {self.port}")
            time.sleep(0.05)
        args, self.metric, self.unit, _ = SCENARIOS[scenario]
        self.command = [LOADGEN, *args, "-w", "1", "-t", str(duration), "--port", str(self.port)]
        self.loadgen = subprocess.Popen(
            ["taskset", "-c", "1", *self.command, "--server-pid", str(self.server.pid)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.connected = threading.Event()
        self.stderr: list[str] = []
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.connecting = args[0] == "connect"
        if args[0] in ("echo", "connect"):
            self.connected.set()

    def _read_stderr(self) -> None:
        assert self.loadgen.stderr is not None
        for line in self.loadgen.stderr:
            self.stderr.append(line)
            if "connecting publisher" in line:
                self.connected.set()
        self.connected.set()

    def wait_steady(self) -> None:
        """Wait for the connections, the readiness probe and the warmup."""
        self.connected.wait(60)
        # Connects are what a connect scenario measures: profile them from the start.
        time.sleep(0.2 if self.connecting else 1.5)

    def finish(self) -> dict[str, object]:
        out, _ = self.loadgen.communicate(timeout=120)
        # Stop our server by its PID: SIGTERM closes it cleanly.
        self.server.send_signal(signal.SIGTERM)
        try:
            self.server.wait(10)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait()
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if not lines:
            raise RuntimeError("loadgen gave no result: " + "".join(self.stderr)[-500:])
        result: dict[str, object] = json.loads(lines[-1])
        return result


def summary(result: dict[str, object]) -> str:
    keys = (
        "ok",
        "msgs_per_s",
        "deliveries_per_s",
        "conns_per_s",
        "mb_per_s",
        "lat_p50_us",
        "lat_p99_us",
        "server_cpu_pct",
    )
    keys += ("error",)
    return ", ".join(f"{k}={result[k]}" for k in keys if k in result)


def frame_name(frame: str) -> tuple[str, str]:
    """``"send (wavecast/asyncio/connection.py:233)"`` -> (function with file, line)."""
    m = re.match(r"(.*) \((.*?)(?::(\d+))?\)$", frame)
    if not m:
        return frame, frame
    func, path, line = m.groups()
    path = re.sub(r".*/(site-packages|src|lib/python3\.\d+)/", "", path)
    return f"{func} ({path})", f"{path}:{line} {func}"


def spy_tables(folded: str, seconds: float, rate: float, unit: str) -> list[str]:
    self_fn: collections.Counter[str] = collections.Counter()
    self_line: collections.Counter[str] = collections.Counter()
    total_fn: collections.Counter[str] = collections.Counter()
    samples = 0
    with open(folded) as f:
        for raw in f:
            stack, _, count = raw.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            n = int(count)
            samples += n
            frames = [frame_name(x) for x in stack.split(";")]
            if not frames:
                continue
            self_fn[frames[-1][0]] += n
            self_line[frames[-1][1]] += n
            for fn in {fn for fn, _ in frames}:
                total_fn[fn] += n
    us = 1e6 / rate if rate else 0.0
    lines = [
        f"{samples} samples in {seconds:.0f} s; at {rate:,.0f} per s, one {unit} costs {us:.2f} us of server time",
        "(while the server is at ~100% CPU). us/unit = share x that.",
        "",
    ]
    for title, counter in (
        ("self time by function (top 30)", self_fn),
        ("inclusive time by function (top 30)", total_fn),
        ("self time by line (top 30)", self_line),
    ):
        lines += [title, f"{'share':>7} {'us/unit':>8}  where", "-" * 100]
        for name, n in counter.most_common(30):
            share = n / samples if samples else 0.0
            lines.append(f"{100 * share:6.1f}% {share * us:8.3f}  {name}")
        lines.append("")
    return lines


def cprofile_tables(path: str, seconds: float) -> list[str]:
    stats = pstats.Stats(path)
    # Calls per published / echoed message: the denominators for the tables below.
    counts = {f"{os.path.basename(file)}:{func}": nc for (file, _, func), (_, nc, *_) in stats.stats.items()}  # type: ignore[attr-defined]
    keys = ["connection.py:send", "connection.py:broadcast", "connection.py:_send_prepared", "connection.py:recv"]
    keys += ["connection.py:data_received", "connection.py:_flush", "connection.py:_process_events"]
    keys += ["connection.py:connection_made", "server.py:_respond"]
    lines = [f"call counts over the {seconds:.0f} s window (normalize the tables below with these):"]
    for key in keys:
        if key in counts:
            lines.append(f"  {key:34s} {counts[key]:>10,}")
    lines.append("")
    for order in ("tottime", "cumulative"):
        buf = io.StringIO()
        s = pstats.Stats(path, stream=buf)
        s.strip_dirs().sort_stats(order).print_stats(30)
        text = buf.getvalue()
        text = text[text.index("   Ordered by") :] if "   Ordered by" in text else text
        lines += [f"cProfile, sorted by {order} (top 30)", text.rstrip(), ""]
    return lines


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", REPO, *args], capture_output=True, text=True, check=True).stdout.strip()


def use_snapshot(ref: str) -> str:
    """Import wavecast from a snapshot of ``ref``'s src/ in the servers we start; return its sha."""
    sha = git("rev-parse", "--short=12", ref + "^{commit}")
    snapshot = os.path.join(BENCH_HOME, "wavecast-src", sha)
    if not os.path.isdir(os.path.join(snapshot, "src", "wavecast")):
        os.makedirs(snapshot, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", REPO, "archive", sha, "src", "hatch_build.py"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", snapshot], input=archive.stdout, check=True)
        # The snapshot's own C extensions, as an install of that commit would have.
        subprocess.run([sys.executable, os.path.join(snapshot, "hatch_build.py"), snapshot], check=False)
    path = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.path.join(snapshot, "src") + (os.pathsep + path if path else "")
    return f"{sha} (snapshot of {ref})"


def profile(scenario: str, version: str, a: argparse.Namespace) -> None:
    loop_flag = "--no-uvloop" if a.no_uvloop else "--uvloop"
    server = [sys.executable, os.path.join(BENCH, "servers", SCENARIOS[scenario][3]), "--port", "{port}", loop_flag]
    base = os.path.join(PROFILES, scenario)
    flags = f" --seconds {a.seconds:g}" + (" --no-uvloop" if a.no_uvloop else "") + (f" --ref {a.ref}" if a.ref else "")
    out = [
        f"# wavecast profile: {scenario} ({'asyncio loop' if a.no_uvloop else 'uvloop'})",
        f"# {datetime.datetime.now():%Y-%m-%d %H:%M}, wavecast {version}, "
        f"Python {platform.python_version()}, {platform.machine()}",
        f"# produced by: .venv/bin/python bench/profile.py {scenario}{flags}",
        "",
    ]
    duration = a.seconds + 3
    spy = shutil.which("py-spy", path=os.path.dirname(sys.executable)) or shutil.which("py-spy")
    if spy:
        trial = Trial(server, scenario, duration)
        out.append("$ " + shlex.join(trial.command))
        trial.wait_steady()
        cmd = [spy, "record", "--pid", str(trial.server.pid), "--duration", str(int(a.seconds))]
        cmd += ["--rate", "200", "--format", "raw", "--nonblocking", "--output", base + ".folded"]
        subprocess.run(cmd, check=True, capture_output=True)
        result = trial.finish()
        rate = float(result.get(trial.metric) or 0)  # type: ignore[arg-type]
        out += [f"loadgen (py-spy pass): {summary(result)}", "", "## py-spy (sampling, low overhead)", ""]
        out += spy_tables(base + ".folded", a.seconds, rate, trial.unit)
    else:
        out += ["(py-spy not installed: `.venv/bin/pip install py-spy` for the sampling pass)", ""]

    # The C extensions and the kernel are invisible to py-spy: perf sees every frame.
    perf = shutil.which("perf")
    if perf:
        trial = Trial(server, scenario, duration)
        trial.wait_steady()
        data = base + ".perf.data"
        record = [perf, "record", "-F", "999", "-g", "-p", str(trial.server.pid), "-o", data, "--", "sleep"]
        subprocess.run([*record, str(a.seconds)], check=False, capture_output=True)
        result = trial.finish()
        report = subprocess.run(
            [perf, "report", "-i", data, "--no-children", "--percent-limit", "1", "--stdio", "-g", "none"],
            capture_output=True,
            text=True,
        ).stdout
        by_dso = subprocess.run(
            [perf, "report", "-i", data, "--no-children", "--sort", "dso", "--stdio", "-g", "none"],
            capture_output=True,
            text=True,
        ).stdout
        os.remove(data)
        out += ["## perf (native code and kernel included)", "", f"loadgen (perf pass): {summary(result)}", ""]
        out += ["share by binary", ""]
        out += [line for line in by_dso.splitlines() if line.strip() and not line.startswith("#")][:12]
        out += ["", "self time by symbol (at least 1%)", ""]
        out += [line for line in report.splitlines() if line.strip() and not line.startswith("#")][:40]
        out.append("")

    prof = base + ".prof"
    trial = Trial([sys.executable, "-c", PROFILED, prof, *server[1:]], scenario, duration)
    trial.wait_steady()
    trial.server.send_signal(signal.SIGUSR1)
    time.sleep(a.seconds)
    trial.server.send_signal(signal.SIGUSR2)
    time.sleep(0.5)
    result = trial.finish()
    out += [f"## cProfile (deterministic; its overhead inflates small functions) over {a.seconds:g} s", ""]
    out += [f"loadgen (cProfile pass, slowed by the profiler): {summary(result)}", ""]
    out += cprofile_tables(prof, a.seconds)
    os.remove(prof)
    with open(base + ".txt", "w") as f:
        f.write("\n".join(out).rstrip() + "\n")
    print(f"wrote {base}.txt", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="+", choices=sorted(SCENARIOS))
    parser.add_argument("--seconds", type=float, default=4, help="length of the profiled window")
    parser.add_argument("--no-uvloop", action="store_true", help="profile on asyncio's loop instead of uvloop")
    parser.add_argument("--ref", help="profile this commit's src/ instead of the working tree")
    a = parser.parse_args()
    subprocess.run(["make", "-s", "-C", os.path.join(BENCH, "loadgen")], check=True)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(PROFILES, exist_ok=True)
    if a.ref:
        version = use_snapshot(a.ref)
    else:
        version = git("rev-parse", "--short=12", "HEAD")
        if git("status", "--porcelain", "--", "src"):
            version += " + uncommitted changes in src/"
    for scenario in a.scenarios:
        profile(scenario, version, a)


if __name__ == "__main__":
    main()
