"""bench/c1m.py's pieces that a test can hold, and the loadgen's held Centrifugo clients over real sockets.

A million clients don't fit in a test: here the kernel settings' raise and restore run against a
directory laid out as ``/proc/sys``, the server's configuration goes through wavecast's own
parser, and the loadgen's connect mode holds a few clients on a real node, from several source
addresses, answering its pings and counting a marked publication.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct
from pathlib import Path
from typing import Any

import pytest

from tests.support.servers import StartWavecast
from tests.support.timing import MS
from tests.support.tokens import make_token
from tests.support.tools import ROOT, load_script
from wavecast.server.config import parse_config

from .test_loadgen import loadgen  # noqa: F401  (the fixture that builds it)

C1M = load_script(ROOT / "bench" / "c1m.py")

CURRENT = {
    "fs.nr_open": "1048576",
    "fs.file-max": "2471007",
    "net.ipv4.tcp_mem": "288465 384622 576930",
    "net.core.netdev_max_backlog": "1000",
}


def test_kernel_targets_only_raise() -> None:
    assert C1M.kernel_targets(10_000, CURRENT) == {"net.core.netdev_max_backlog": "10000"}
    assert C1M.kernel_targets(10_000, {**CURRENT, "net.core.netdev_max_backlog": "20000"}) == {}
    # fs.file-max is already above 2N + 256k here.
    assert C1M.kernel_targets(1_000_000, CURRENT) == {
        "fs.nr_open": "1065536",
        "net.ipv4.tcp_mem": "500000 1000000 1500000",
        "net.core.netdev_max_backlog": "1000000",
    }
    wanted = C1M.kernel_targets(2_000_000, CURRENT)
    assert wanted["fs.file-max"] == str(4_262_144)
    assert wanted["fs.nr_open"] == str(2_065_536)
    # A value already above the target stays as it is, one part of tcp_mem included.
    current = {**CURRENT, "net.ipv4.tcp_mem": "100 500000 900000", "net.core.netdev_max_backlog": "500000"}
    assert C1M.kernel_targets(400_000, current) == {"net.ipv4.tcp_mem": "200000 500000 900000"}


def proc_sys(root: Path) -> None:
    for name, value in CURRENT.items():
        path = root / name.replace(".", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value.replace(" ", "\t") + "\n")


def test_sysctls_are_restored(tmp_path: Path) -> None:
    proc_sys(tmp_path)
    sysctls = C1M.Sysctls(C1M.SYSCTLS, root=tmp_path)
    assert sysctls.read() == CURRENT
    wanted = C1M.kernel_targets(1_000_000, sysctls.read())
    sysctls.apply(wanted)
    assert sysctls.read() == {**CURRENT, **wanted}
    # Applied twice, the first old value is the one kept.
    sysctls.apply({"fs.nr_open": "3000000"})
    assert sysctls.restore() == {name: CURRENT[name] for name in wanted}
    assert sysctls.read() == CURRENT
    assert sysctls.restore() == {}


def test_restored_on_an_interrupt(tmp_path: Path) -> None:
    # SIGTERM ends the run as Ctrl-C does, and the finally that restores runs.
    proc_sys(tmp_path)
    sysctls = C1M.Sysctls(C1M.SYSCTLS, root=tmp_path)
    with pytest.raises(KeyboardInterrupt), C1M.terminate_as_interrupt():
        try:
            sysctls.apply({"fs.nr_open": "2000000"})
            signal.raise_signal(signal.SIGTERM)
        finally:
            sysctls.restore()
    assert sysctls.read() == CURRENT
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_sources_processes_and_shares() -> None:
    assert C1M.source_addresses(10_000, "32768\t60999\n") == 1
    assert C1M.source_addresses(1_000_000, "32768 60999") == 40  # 25,232 ports each
    with pytest.raises(ValueError, match="too few ports"):
        C1M.source_addresses(10, "60000 60100")
    assert C1M.split_clients(100_000, 19_900, 1000) == [17_000] * 4 + [16_000] * 2
    assert C1M.split_clients(10_000, 19_900, 1000) == [10_000]
    assert sum(C1M.split_clients(1_000_000, 19_900, 1000)) == 1_000_000
    with pytest.raises(ValueError, match="fewer than the 1000 channels"):
        C1M.split_clients(10_000, 999, 1000)
    assert C1M.server_workers(18_500, 20_000) == 1
    assert C1M.server_workers(100_000, 20_000) == 6
    assert C1M.server_workers(1_000_000, 1_100_000) == 1


@pytest.mark.parametrize("workers", [1, 4])
def test_server_config_is_what_wavecast_serve_reads(workers: int) -> None:
    import tomllib

    redis = "redis://127.0.0.1:6399/0" if workers > 1 else None
    text = C1M.server_config(admission=False, ping_interval=25.0, workers=workers, redis_url=redis)
    config = parse_config(tomllib.loads(text))
    assert config.server.workers == workers
    assert config.engine.type == ("redis" if redis else "memory")
    assert config.channel.allow_subscribe_for_client
    client = config.client
    assert client["client_ping_interval"] == 25.0 and client["admission_connect_rate"] is None
    on = parse_config(tomllib.loads(C1M.server_config(admission=True, ping_interval=25.0)))
    assert "admission_connect_rate" not in on.client
    with pytest.raises(ValueError, match="shared engine"):
        C1M.server_config(admission=True, ping_interval=25.0, workers=2)


def test_parsers() -> None:
    line = "# STATUS t=12.5 started=10 open=9 failed=1 lost=0 pings=7 pushes=3 marked=2 mark_first=12.1 mark_last=12.3"
    status = C1M.parse_status(line)
    assert status is not None and status["open"] == 9 and status["mark_last"] == 12.3
    assert C1M.parse_status("# HOLD open=1") is None
    other = {**status, "open": 5.0, "mark_first": 11.0, "mark_last": 13.0}
    merged = C1M.merge_status([status, other, {"mark_first": 0.0, "mark_last": 0.0}])
    assert merged["open"] == 14 and merged["mark_first"] == 11.0 and merged["mark_last"] == 13.0
    sockstat = "sockets: used 9\nTCP: inuse 6972 orphan 0 tw 3982 alloc 6980 mem 197\nUDP: inuse 0 mem 0\n"
    assert C1M.parse_sockstat(sockstat) == {"inuse": 6972, "orphan": 0, "tw": 3982, "alloc": 6980, "mem": 197}
    assert C1M.meminfo_kib("MemTotal:  24731 kB\nSlab:   400 kB\n") == {"MemTotal": 24731, "Slab": 400}


def test_the_report_renders_a_run() -> None:
    options = {"ping_interval": 25.0, "workers": 6}
    result = {"clients": 100_000, "channels": 1000, "admission": False, "options": options, "open": 100_000}
    sample = {"t": 0.0, "phase": "hold", "open": 1, "server_rss_kib": 2048, "tcp_mem_pages": 1, "slab_kib": 1024}
    text = C1M.report({**result, "samples": [sample]}, "python bench/c1m.py", {}, {})
    assert "| clients held (each subscribed to 1 of 1,000 channels + `all`) | 100,000 |" in text
    assert "redis-server" in text and "| 0 | hold | 1 | 2 |" in text


def held_addresses(port: int) -> set[str]:
    """The local addresses of the TCP connections to 127.0.0.1:``port`` (``/proc/net/tcp``)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, state = line.split()[1:4]
        if state == "01" and remote == f"0100007F:{port:04X}":
            found.add(socket.inet_ntoa(struct.pack("<I", int(local.split(":")[0], 16))))
    return found


async def test_held_clients_answer_pings_and_count_a_marked_push(
    loadgen: str,  # noqa: F811
    start_wavecast: StartWavecast,
) -> None:
    running = await start_wavecast(
        client={"client_ping_interval": 0.2, "client_pong_timeout": 0.5, "user_connection_limit": None},
        channel={"allow_subscribe_for_client": True},
    )
    clients = 12
    process = await asyncio.create_subprocess_exec(
        *(loadgen, "connect", "--port", str(running.port), "--path", "/connection/websocket", "-n", str(clients)),
        *("--sub-init", C1M.sub_init(make_token("c1m")), "--sub-init-variants", "4", "--join-reply", '"id":3'),
        *("--src-addrs", "3", "--report-every", "0.05", "--mark", C1M.MARK, "-H", "20", "-q"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    status: dict[str, float] = {}
    async with asyncio.timeout(30_000 * MS):
        while not (status.get("open") == clients and status.get("pings", 0) >= 2 * clients):
            line = (await process.stdout.readline()).decode()
            assert line, await process.stderr.read()  # type: ignore[union-attr]
            status = C1M.parse_status(line) or status
        # Round-robin over 127.0.0.2, .3 and .4.
        assert held_addresses(running.port) == {"127.0.0.2", "127.0.0.3", "127.0.0.4"}
        await running.node.publish(C1M.SHARED, {"m": C1M.MARK})
        await running.node.publish("ch1", {"m": "other"})
        # Each client of variant 1 (3 of them) gets the second one.
        while status.get("marked") != clients or status.get("pushes") != clients + 3:
            line = (await process.stdout.readline()).decode()
            assert line
            status = C1M.parse_status(line) or status
        assert 0 < status["mark_first"] <= status["mark_last"]
        process.send_signal(signal.SIGUSR2)
        out, _ = await process.communicate()
    result: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
    assert result["open"] == clients and result["lost"] == 0 and result["failed"] == 0
    assert result["marked"] == clients and result["pings"] >= 2 * clients
