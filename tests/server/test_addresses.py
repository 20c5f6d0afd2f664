"""Per-address limits, pure: who a request comes from, and what each address may open."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections import Counter
from pathlib import Path

import pytest

from wavecast.server.addresses import AddressLimits, client_address, parse_networks

from ..support.config import API_KEY
from ..support.haproxy import Haproxy
from ..support.http import http, http_from, scrape_metrics
from ..support.peers import RawSocket, handshake_request, open_raw_client
from ..support.processes import free_port
from ..support.servers import StartWavecast
from ..support.streams import open_raw_stream
from ..support.timing import MS, wait_until
from ..support.tools import haproxy

LOCAL = parse_networks(["127.0.0.1/32", "::1"])
PROXIES = parse_networks(["10.0.0.0/8", "2001:db8:ffff::/48"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # The peer isn't a trusted proxy: whatever it claims is ignored.
        ("198.51.100.7", ["203.0.113.9"], "198.51.100.7"),
        ("198.51.100.7", ["10.0.0.1"], "198.51.100.7"),
        # A trusted proxy without the header: the proxy itself.
        ("10.0.0.1", [], "10.0.0.1"),
        # The rightmost untrusted hop: what the client wrote to the left of it is its own.
        ("10.0.0.1", ["203.0.113.9"], "203.0.113.9"),
        ("10.0.0.1", ["1.2.3.4, 203.0.113.9"], "203.0.113.9"),
        ("10.0.0.1", ["1.2.3.4, 203.0.113.9, 10.0.0.2"], "203.0.113.9"),
        # Several headers are one list, in order.
        ("10.0.0.1", ["1.2.3.4", "203.0.113.9", "10.0.0.2"], "203.0.113.9"),
        ("10.0.0.1", ["1.2.3.4, 203.0.113.9", "10.0.0.2,10.0.0.3"], "203.0.113.9"),
        # Every hop trusted: the leftmost.
        ("10.0.0.1", ["10.0.0.3, 10.0.0.2"], "10.0.0.3"),
        # IPv6, with brackets and ports as some proxies write them, and IPv4-mapped addresses.
        ("2001:db8:ffff::1", ["2001:db8::7"], "2001:db8::7"),
        ("2001:db8:ffff::1", ["[2001:db8::7]:4711"], "2001:db8::7"),
        ("2001:db8:ffff::1", ["[2001:db8::7]"], "2001:db8::7"),
        ("::ffff:10.0.0.1", ["203.0.113.9:4711"], "203.0.113.9"),
        ("10.0.0.1", ["::ffff:203.0.113.9"], "203.0.113.9"),
        ("10.0.0.1", ["2001:DB8::0:7"], "2001:db8::7"),
        # Malformed hops end the walk at the trusted proxy that passed them on.
        ("10.0.0.1", ["unknown"], "10.0.0.1"),
        ("10.0.0.1", [""], "10.0.0.1"),
        ("10.0.0.1", ["203.0.113.9,"], "10.0.0.1"),
        ("10.0.0.1", ["203.0.113.9, garbage, 10.0.0.2"], "10.0.0.2"),
        ("10.0.0.1", ["203.0.113.9:port"], "10.0.0.1"),
        ("10.0.0.1", ["[2001:db8::7"], "10.0.0.1"),
        ("10.0.0.1", ["[2001:db8::7]x"], "10.0.0.1"),
        ("10.0.0.1", ["fe80::1%eth0"], "10.0.0.1"),
        ("10.0.0.1", ["300.1.2.3"], "10.0.0.1"),
        ("10.0.0.1", ["203.0.113.9 203.0.113.10"], "10.0.0.1"),
        # Peers that aren't IP addresses are kept as they are; none is None.
        ("testclient", ["203.0.113.9"], "testclient"),
        (None, ["203.0.113.9"], None),
    ],
)
def test_client_address(peer: str | None, forwarded: list[str], expected: str | None) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_client_address_trusts_no_one_by_default() -> None:
    assert client_address("127.0.0.1", ["203.0.113.9"], ()) == "127.0.0.1"
    assert client_address("127.0.0.1", ["203.0.113.9"], LOCAL) == "203.0.113.9"
    # An IPv4 network never holds an IPv6 address, nor the reverse.
    assert client_address("::1", ["203.0.113.9"], parse_networks(["0.0.0.0/0"])) == "::1"


@pytest.mark.parametrize("value", ["10.0.0.1/8", "localhost", "10.0.0.0/33", ""])
def test_parse_networks_names_what_is_wrong(value: str) -> None:
    with pytest.raises(ValueError, match=f"got {value!r}"):
        parse_networks([value])


def test_connections_are_counted_per_address_and_released() -> None:
    limits = AddressLimits(max_connections=2, handshake_rate=None)
    assert limits.open("a1", "192.0.2.1", 0) is None
    assert limits.open("a2", "192.0.2.1", 0) is None
    refused = limits.open("a3", "192.0.2.1", 0)
    assert refused is not None
    assert (refused.limit, refused.status, refused.headers) == ("connections", 429, (("Retry-After", "10"),))
    assert refused.body == b"Too Many Requests: this address has reached its limit of 2 open connections\n"
    # Another address isn't affected.
    assert limits.open("b1", "192.0.2.2", 0) is None
    assert limits.connections == {"192.0.2.1": 2, "192.0.2.2": 1}
    limits.close("a1")
    assert limits.open("a3", "192.0.2.1", 0) is None
    # Closing twice, or what was never admitted, changes nothing.
    limits.close("a1")
    limits.close("never")
    assert limits.connections == {"192.0.2.1": 2, "192.0.2.2": 1}
    for holder in ("a2", "a3", "b1"):
        limits.close(holder)
    assert limits.connections == {}
    assert limits.refused == {"connections": 1, "handshakes": 0, "api": 0}


def test_a_holder_is_counted_once() -> None:
    limits = AddressLimits(max_connections=1, handshake_rate=None)
    assert limits.open("a", "192.0.2.1", 0) is None
    assert limits.open("a", "192.0.2.1", 0) is None
    assert limits.connections == {"192.0.2.1": 1}


def test_handshake_rate_with_burst() -> None:
    limits = AddressLimits(max_connections=None, handshake_rate=2.0, handshake_burst=3)
    assert [limits.open(n, "192.0.2.1", 0) is None for n in range(4)] == [True, True, True, False]
    refused = limits.open("x", "192.0.2.1", 0)
    assert refused is not None
    assert (refused.limit, refused.retry_after) == ("handshakes", 1)
    assert b"more than 2 new connections per second" in refused.body
    # Another address has its own bucket; this one regains a token in 1 / rate.
    assert limits.open("y", "192.0.2.2", 0) is None
    assert limits.open("z", "192.0.2.1", 0.4) is not None
    assert limits.open("z", "192.0.2.1", 0.5) is None
    # A refused handshake opened nothing.
    assert limits.connections == {"192.0.2.1": 4, "192.0.2.2": 1}


def test_an_address_at_its_connection_limit_spends_no_handshake_token() -> None:
    limits = AddressLimits(max_connections=1, handshake_rate=1.0, handshake_burst=1)
    assert limits.open("a", "192.0.2.1", 0) is None
    refused = limits.open("b", "192.0.2.1", 0)
    assert refused is not None and refused.limit == "connections"
    limits.close("a")
    refused = limits.open("b", "192.0.2.1", 0)
    assert refused is not None and refused.limit == "handshakes"


def test_ipv6_addresses_are_counted_by_prefix() -> None:
    limits = AddressLimits(max_connections=2, handshake_rate=None)
    assert limits.open("a", "2001:db8:1:2::1", 0) is None
    assert limits.open("b", "2001:db8:1:2:ffff::9", 0) is None
    assert limits.open("c", "2001:db8:1:2::3", 0) is not None
    assert limits.open("d", "2001:db8:1:3::1", 0) is None
    assert limits.connections == {"2001:db8:1:2::/64": 2, "2001:db8:1:3::/64": 1}
    assert AddressLimits(ipv6_prefix_length=128).key("2001:db8::1") == "2001:db8::1"
    # A dual-stack socket's IPv4 client is that IPv4 address, not one of a shared prefix.
    assert limits.key("::ffff:192.0.2.1") == limits.key("192.0.2.1") == "192.0.2.1"
    assert limits.key("not an address") == "not an address"
    assert limits.key("not:an:address") == "not:an:address"
    assert AddressLimits(ipv6_prefix_length=48).key("2001:db8:1:2::1") == "2001:db8:1::/48"


def test_unknown_addresses_share_one_count() -> None:
    limits = AddressLimits(max_connections=1, handshake_rate=None)
    assert limits.open("a", None, 0) is None
    assert limits.open("b", None, 0) is not None
    assert limits.open("c", "testclient", 0) is None


def test_api_rate() -> None:
    limits = AddressLimits(api_rate=10.0, api_burst=2)
    assert [limits.api("192.0.2.1", 0) is None for _ in range(3)] == [True, True, False]
    refused = limits.api("192.0.2.1", 0)
    assert refused is not None and refused.limit == "api" and refused.status == 429
    assert limits.api("192.0.2.2", 0) is None
    assert limits.api("192.0.2.1", 0.1) is None
    assert limits.refused["api"] == 2
    assert AddressLimits(api_rate=None).api("192.0.2.1", 0) is None


def test_buckets_that_filled_up_again_are_forgotten() -> None:
    limits = AddressLimits(max_connections=None, handshake_rate=10.0, handshake_burst=5, api_rate=10.0, api_burst=5)
    for n in range(1000):
        address = f"192.0.2.{n % 250}" if n < 500 else f"198.51.100.{n % 250}"
        assert limits.open(n, address, n * 0.001) is None
        assert limits.api(address, n * 0.001) is None
    assert limits.tracked == 500
    for n in range(1000):
        limits.close(n)
    # Half a second later a bucket has regained 5 tokens: new addresses push out the full ones.
    assert limits.api("203.0.113.1", 10.0) is None
    assert limits.open("last", "203.0.113.1", 10.0) is None
    limits.close("last")
    assert limits.tracked == 1
    assert limits.connections == {}


def test_tracked_addresses_are_bounded() -> None:
    limits = AddressLimits(max_connections=None, handshake_rate=1.0, handshake_burst=1, max_addresses=100)
    for n in range(1000):
        assert limits.open(n, f"10.0.{n // 256}.{n % 256}", 0) is None
        limits.close(n)
    assert limits.tracked == 100
    # The least recently seen was forgotten: a full burst again, which is the generous side.
    assert limits.open("again", "10.0.0.0", 0) is None
    assert limits.open("again2", "10.0.3.231", 0) is not None


# --- over real sockets, with wavecast serve -------------------------------------------------

WS = "/connection/websocket"


async def upgrade(port: int, source: str, headers: str = "") -> tuple[RawSocket, int, dict[str, str], bytes]:
    """Ask for a WebSocket from ``source``; return the open socket and the answer's status,
    headers and body (none for a 101)."""
    raw = await open_raw_client(port, source=source)
    try:
        await raw.send(handshake_request(port, WS, headers=headers))
        head = await raw.read_head()
        status = int(head.split()[1])
        if status == 101:
            return raw, status, {}, b""
        raw.buffer[:0] = head
        _, answer_headers, body = await raw.read_response()
    except BaseException:
        raw.close()
        raise
    return raw, status, answer_headers, body


async def test_an_address_past_its_connection_limit_gets_429_and_others_still_connect(
    start_wavecast: StartWavecast,
) -> None:
    running = await start_wavecast(per_address={"max_connections": 3}, http_stream={"enabled": True})
    opened = []
    try:
        # A stream counts as a connection, as a WebSocket does.
        stream, _ = await open_raw_stream(running.port, "42", source="127.0.0.1")
        opened.append(stream)
        for _ in range(2):
            raw, status, _, _ = await upgrade(running.port, "127.0.0.1")
            opened.append(raw)
            assert status == 101
        raw, status, headers, body = await upgrade(running.port, "127.0.0.1")
        opened.append(raw)
        assert (status, headers["retry-after"]) == (429, "10")
        assert body == b"Too Many Requests: this address has reached its limit of 3 open connections\n"
        refused_stream = await http("POST", running.url + "/connection/http_stream", b"{}")
        assert refused_stream.status == 429
        # Another address of this machine, as another client.
        raw, status, _, _ = await upgrade(running.port, "127.0.0.2")
        opened.append(raw)
        assert status == 101
        assert running.app.addresses.connections == {"127.0.0.1": 3, "127.0.0.2": 1}
        # One closes: the address may open one again.
        opened[0].close()
        await wait_until(lambda: running.app.addresses.connections.get("127.0.0.1") == 2)
        raw, status, _, _ = await upgrade(running.port, "127.0.0.1")
        opened.append(raw)
        assert status == 101
        scrape = await scrape_metrics(running.url)
        assert scrape.value("wavecast_address_refusals_total", limit="connections") == 2
        assert scrape.value("wavecast_addresses_connected") == 2
    finally:
        for raw in opened:
            raw.close()
    await wait_until(lambda: not running.app.addresses.connections, what="every connection released")


async def test_new_connections_per_second_per_address(start_wavecast: StartWavecast) -> None:
    # One new connection per 100 s once the burst of 2 is spent: no test runs that long.
    running = await start_wavecast(per_address={"handshake_rate": 0.01, "handshake_burst": 2})
    opened = []
    try:
        statuses = []
        for _ in range(3):
            raw, status, headers, body = await upgrade(running.port, "127.0.0.1")
            opened.append(raw)
            statuses.append(status)
        assert statuses == [101, 101, 429]
        assert headers["retry-after"] == "100"
        assert body == b"Too Many Requests: more than 0.01 new connections per second\n"
        raw, status, _, _ = await upgrade(running.port, "127.0.0.2")
        opened.append(raw)
        assert status == 101
        assert (await scrape_metrics(running.url)).value("wavecast_address_refusals_total", limit="handshakes") == 1
    finally:
        for raw in opened:
            raw.close()


async def test_api_requests_per_second_per_address(start_wavecast: StartWavecast) -> None:
    running = await start_wavecast(per_address={"api_rate": 0.01, "api_burst": 2})
    url = running.url + "/api/info"
    headers = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
    answers = [await http_from("127.0.0.1", "POST", url, headers, body=b"{}") for _ in range(3)]
    assert [answer.status for answer in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "100"
    assert answers[2].text == "Too Many Requests: more than 0.01 API requests per second\n"
    # Counted before the key is checked: a flood of wrong keys costs no more.
    wrong = await http_from("127.0.0.1", "POST", url, {"X-API-Key": "wrong"}, body=b"{}")
    assert wrong.status == 429
    assert (await http_from("127.0.0.2", "POST", url, headers, body=b"{}")).status == 200
    # The other routes aren't limited.
    assert (await http_from("127.0.0.1", "GET", running.url + "/health")).status == 200
    assert (await scrape_metrics(running.url)).value("wavecast_address_refusals_total", limit="api") == 2


async def test_behind_a_trusted_proxy_the_forwarded_address_counts(
    start_wavecast: StartWavecast, tmp_path: Path
) -> None:
    running = await start_wavecast(server={"trusted_proxies": ["127.0.0.1/32"]}, per_address={"max_connections": 2})
    proxy = Haproxy(haproxy(), free_port(), [running.port], cwd=tmp_path)
    opened = []
    try:
        await proxy.wait_ready()
        statuses = []
        # What the client claims is to the left of what haproxy appends: not believed.
        for spoof in ("", "X-Forwarded-For: 192.0.2.1\r\n", "X-Forwarded-For: 127.0.0.3\r\n"):
            raw, status, _, _ = await upgrade(proxy.port, "127.0.0.2", spoof)
            opened.append(raw)
            statuses.append(status)
        assert statuses == [101, 101, 429]
        raw, status, _, _ = await upgrade(proxy.port, "127.0.0.3")
        opened.append(raw)
        assert status == 101
        assert running.app.addresses.connections == {"127.0.0.2": 2, "127.0.0.3": 1}
        # The address haproxy connects from isn't counted: its health checks aren't either.
        assert "127.0.0.1" not in running.app.addresses.connections
    finally:
        for raw in opened:
            raw.close()
        proxy.kill()
    await wait_until(lambda: not running.app.addresses.connections, what="every connection released")


async def test_the_table_empties_as_connections_close(start_wavecast: StartWavecast) -> None:
    """Thousands of connections open and close, cleanly, abruptly or refused: none stays counted."""
    running = await start_wavecast(
        per_address={"max_connections": 60, "handshake_rate": False}, http_stream={"enabled": True}
    )
    statuses: Counter[int] = Counter()
    # 127.0.0.3 is at its limit throughout: each of its upgrades is refused.
    held = [(await upgrade(running.port, "127.0.0.3"))[0] for _ in range(60)]

    async def one(n: int) -> None:
        if n % 10 == 0:
            stream, _ = await open_raw_stream(running.port, "42", source="127.0.0.1")
            stream.close()
            statuses[200] += 1
            return
        raw, status, _, _ = await upgrade(running.port, f"127.0.0.{1 + n % 3}")
        statuses[status] += 1
        with raw:
            if status == 101 and n % 2:
                await raw.send_close()
                await raw.read_until_eof()
            elif status == 101:
                # Gone without a word: reset.
                raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    for batch in range(20):
        await asyncio.gather(*(one(batch * 100 + n) for n in range(100)))
    assert statuses == {101: 1200, 429: 600, 200: 200}
    assert running.app.addresses.connections["127.0.0.3"] == 60
    for raw in held:
        raw.close()
    await wait_until(lambda: not running.server.connections, timeout=10_000 * MS, what="every connection closed")
    assert running.app.addresses.connections == {}
    assert running.app.addresses._holders == {}
