"""Limits per client address: open connections, new connections per second, API requests per second.

Whom a request comes from is the socket's peer address, unless that peer is one of the
trusted proxies (``server.trusted_proxies``): then it is the rightmost address of
``X-Forwarded-For`` that isn't a trusted proxy, since each proxy appends the address it got
the request from, and only what the trusted ones appended can be believed (whatever is to the
left of it, the client wrote itself). :func:`client_address` does that and nothing else.

:class:`AddressLimits` keeps, per address, the number of open connections (WebSockets and
HTTP-streaming or SSE sessions) and two token buckets, one for new connections and one for
requests to the server API. IPv6 clients are counted by their prefix (``/64`` by default),
since a single host is given a whole ``/64`` and may use any address in it. Everything here is
pure: the caller passes the time.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import ipaddress
import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Literal

from ..realtime.ratelimit import TokenBucket

__all__ = ["AddressLimits", "Network", "Refused", "client_address", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Limit = Literal["connections", "handshakes", "api"]

#: The key of clients whose address isn't known (a Unix socket, an ASGI server that gives
#: none): they share one count.
UNKNOWN = ""


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Parse CIDRs such as ``10.0.0.0/8`` or single addresses such as ``::1``.

    Raises:
        ValueError: naming the value that isn't a network, or that has host bits set
            (``10.0.0.1/8``: did it mean ``10.0.0.0/8`` or ``10.0.0.1/32``?).
    """
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip()))
        except ValueError as exc:
            raise ValueError(f"expected a network such as '10.0.0.0/8' or '::1', got {value!r}: {exc}") from exc
    return tuple(networks)


# The same few proxies and the same clients come back with every request: parsing is most of
# the cost of finding the client, and a miss costs only the parse.
@functools.lru_cache(maxsize=4096)
def _parse_hop(text: str) -> Address | None:
    """Parse one hop of ``X-Forwarded-For``: an address, with or without a port; ``None`` if malformed.

    Some proxies add the port (``192.0.2.1:4711``, ``[2001:db8::1]:4711``), which the
    client's identity doesn't depend on. An IPv4-mapped IPv6 address is the IPv4 one.
    """
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not port.isdigit():
            return None
    else:
        host = text
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            # A zone names an interface of the host that wrote it, not an address of the client.
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def client_address(peer: str | None, forwarded: Sequence[str], trusted: Sequence[Network]) -> str | None:
    """Return the address of the client that made a request.

    Args:
        peer: the socket's peer address; ``None`` when there is none (a Unix socket).
        forwarded: the values of every ``X-Forwarded-For`` header of the request, in order;
            several headers make one list, as if joined with commas (RFC 9110, section 5.3).
        trusted: the proxies whose ``X-Forwarded-For`` is believed.

    Returns:
        ``peer`` when it isn't a trusted proxy (as it is, when none is trusted); otherwise the
        rightmost hop that isn't one.
        A malformed hop (``unknown``, an empty one, garbage) ends the walk at the trusted
        proxy that passed it on, so that a client can never choose its own address, and the
        leftmost hop is taken when every hop is trusted. Addresses are normalized
        (``::ffff:192.0.2.1`` is ``192.0.2.1``); a peer that isn't an IP address is returned as it is.
    """
    if peer is None:
        return None
    if not trusted:
        # Nothing to believe: the peer as the socket gives it (AddressLimits.key reads an
        # IPv4-mapped one as IPv4), without parsing it for every request.
        return peer
    address = _parse_hop(peer)
    if address is None:
        return peer
    if not trusted or not _within(address, trusted):
        return str(address)
    for value in reversed(forwarded):
        for hop in reversed(value.split(",")):
            parsed = _parse_hop(hop)
            if parsed is None:
                return str(address)
            address = parsed
            if not _within(address, trusted):
                return str(address)
    return str(address)


def _within(address: Address, networks: Sequence[Network]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """Why a connection or an API request from an address is refused, and what to answer.

    Attributes:
        limit: the limit it ran into: ``connections``, ``handshakes`` or ``api``.
        retry_after: whole seconds after which a retry may succeed (``Retry-After``).
        text: the answer's body, for people.
    """

    limit: Limit
    retry_after: int
    text: str

    #: 429 Too Many Requests (RFC 6585): it is this client's own doing, not the server's state.
    status = 429

    @property
    def body(self) -> bytes:
        return f"Too Many Requests: {self.text}\n".encode()

    @property
    def headers(self) -> tuple[tuple[str, str], ...]:
        return (("Retry-After", str(self.retry_after)),)


#: How long a client refused for too many open connections is told to wait: when one of its
#: connections closes is unknown, and SDKs apply their own backoff anyway.
CONNECTIONS_RETRY_AFTER = 10


class AddressLimits:
    """Connections and rates per client address; pure, given ``now``.

    Args:
        max_connections: open connections per address; ``None`` for no limit.
        handshake_rate: new connections per second an address regains; ``None`` for no limit.
        handshake_burst: new connections an address may open at once.
        api_rate: server API requests per second an address regains; ``None`` for no limit.
        api_burst: API requests an address may make at once.
        ipv6_prefix_length: IPv6 addresses that share this prefix count as one address.
        max_addresses: addresses whose rates are tracked at most, in each of the two tables;
            past it the least recently seen is forgotten, and gets a full burst again.

    Attributes:
        refused: refusals so far, by limit.
        connections: open connections by address key (only addresses that have some).
    """

    def __init__(
        self,
        *,
        max_connections: int | None = 10_000,
        handshake_rate: float | None = 100.0,
        handshake_burst: int = 1_000,
        api_rate: float | None = 1_000.0,
        api_burst: int = 1_000,
        ipv6_prefix_length: int = 64,
        max_addresses: int = 100_000,
    ) -> None:
        self.max_connections = max_connections
        self.handshake_rate = handshake_rate
        self.handshake_burst = handshake_burst
        self.api_rate = api_rate
        self.api_burst = api_burst
        self.ipv6_prefix_length = ipv6_prefix_length
        self._ipv6_mask = ((1 << ipv6_prefix_length) - 1) << (128 - ipv6_prefix_length)
        self.max_addresses = max_addresses
        self.refused: dict[Limit, int] = {"connections": 0, "handshakes": 0, "api": 0}
        self.connections: dict[str, int] = {}
        # Whoever holds a connection (the server's connection object, or a token under ASGI)
        # to its address key, so that closing needs nothing but the holder.
        self._holders: dict[Hashable, str] = {}
        # Least recently used first: a bucket that filled up again tells nothing and goes.
        self._handshakes: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()
        self._api: collections.OrderedDict[str, TokenBucket] = collections.OrderedDict()

    def key(self, address: str | None) -> str:
        """The key an address is counted under: itself, its IPv6 prefix, or :data:`UNKNOWN`."""
        if address is None:
            return UNKNOWN
        if ":" not in address:
            # IPv4 as the socket or client_address() writes it, or a name: itself, unparsed,
            # since this runs for every handshake and API request.
            return address
        try:
            parsed = ipaddress.IPv6Address(address)
        except ValueError:
            return address
        if parsed.ipv4_mapped is not None:
            # A dual-stack socket's IPv4 client.
            return str(parsed.ipv4_mapped)
        if self.ipv6_prefix_length == 128:
            return str(parsed)
        return f"{ipaddress.IPv6Address(int(parsed) & self._ipv6_mask)}/{self.ipv6_prefix_length}"

    def open(self, holder: Hashable, address: str | None, now: float) -> Refused | None:
        """Admit a new connection from ``address``, held by ``holder`` until :meth:`close`.

        A holder that already holds a connection (a kept-alive HTTP connection asking to
        upgrade again after a failed handshake) is admitted without being counted twice.

        Returns:
            ``None`` if admitted; otherwise why not, and nothing is counted.
        """
        if holder in self._holders:
            return None
        key = self.key(address)
        count = self.connections.get(key, 0)
        if self.max_connections is not None and count >= self.max_connections:
            # Before the bucket: a refusal here spends no token.
            return self._refuse(
                "connections",
                CONNECTIONS_RETRY_AFTER,
                f"this address has reached its limit of {self.max_connections} open connections",
            )
        if self.handshake_rate is not None:
            bucket = self._bucket(self._handshakes, key, self.handshake_rate, self.handshake_burst, now)
            if not bucket.take(now):
                rate = self.handshake_rate
                return self._refuse("handshakes", _retry(rate), f"more than {rate:g} new connections per second")
        self.connections[key] = count + 1
        self._holders[holder] = key
        return None

    def close(self, holder: Hashable) -> None:
        """Count the connection of ``holder`` as closed; safe to call for one never admitted, and twice."""
        key = self._holders.pop(holder, None)
        if key is None:
            return
        count = self.connections[key] - 1
        if count:
            self.connections[key] = count
        else:
            del self.connections[key]

    def api(self, address: str | None, now: float) -> Refused | None:
        """Admit one server API request from ``address``; ``None`` if admitted, else why not."""
        if self.api_rate is None:
            return None
        bucket = self._bucket(self._api, self.key(address), self.api_rate, self.api_burst, now)
        if bucket.take(now):
            return None
        rate = self.api_rate
        return self._refuse("api", _retry(rate), f"more than {rate:g} API requests per second")

    @property
    def tracked(self) -> int:
        """Addresses tracked in all: with open connections, or with buckets not yet refilled."""
        return len(self.connections.keys() | self._handshakes.keys() | self._api.keys())

    def _bucket(
        self, table: collections.OrderedDict[str, TokenBucket], key: str, rate: float, burst: int, now: float
    ) -> TokenBucket:
        bucket = table.get(key)
        if bucket is not None:
            table.move_to_end(key)
            return bucket
        # Forgetting the oldest buckets that filled up again keeps the table to the addresses
        # seen lately; each is forgotten once, so a request costs a constant time on average.
        while table and (len(table) >= self.max_addresses or next(iter(table.values())).full(now)):
            table.popitem(last=False)
        bucket = table[key] = TokenBucket(rate, burst, now)
        return bucket

    def _refuse(self, limit: Limit, retry_after: int, text: str) -> Refused:
        self.refused[limit] += 1
        return Refused(limit, retry_after, text)


def _retry(rate: float) -> int:
    """Whole seconds until a bucket of ``rate`` regains a token, at least 1."""
    return max(1, math.ceil(1 / rate))
