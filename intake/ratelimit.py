"""Per-client rate limiting of accepted submissions, with `Retry-After`: in memory for one
process (SQLite), in the database for several servers on one PostgreSQL.

Only accepted submissions count: a refused one (422, 413, 415) costs nothing, so a person
correcting a typo is never locked out. On PostgreSQL the log is shared (leadctl.fastpath),
so N servers behind a load balancer allow the limit once, not N times. The limiters count the
keys they are given: `Intake.client` gives `client_key`'s, an IPv6 client by its /64.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict, deque

from litestar.types import Scope

from leadctl import fastpath
from leadctl.settings import Network

# Any IPv6 host may take any address of its /64 (SLAAC privacy addresses do so on their own):
# counted address by address, one host had 2^64 allowances.
IPV6_PREFIX = 64


UNREADABLE = "unreadable"  # every spelling no parser reads is one client: none buys a new allowance


def client_key(address: str) -> str:
    """What the limits count for `address`: an IPv4 address in its one spelling; an IPv6 one as
    its /64, unless it carries an IPv4 address (mapped, compatible, 6to4, Teredo), then as that
    IPv4 address. A proxy's `[v6]:port` or `v4:port` counts without its port; what is still no
    address counts as one client, UNREADABLE (leading zeros, hex, `unknown`)."""
    text = address.strip()
    if text.startswith("[") and "]" in text:  # `[2001:db8::1]:443`
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:  # `203.0.113.5:5678`
        text = text.partition(":")[0]
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return UNREADABLE
    if isinstance(ip, ipaddress.IPv4Address):
        return str(ip)
    number = int(ip)
    carried = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
    if carried is None and 1 < number < 2**32:  # IPv4-compatible `::203.0.113.5`
        carried = ipaddress.IPv4Address(number)
    if carried is not None:
        return str(carried)
    return str(ipaddress.IPv6Network((number, IPV6_PREFIX), strict=False))


class RateLimiter:
    """A sliding log per client: at most `limit` accepted submissions in any `period` seconds."""

    def __init__(self, limit: int, period: float, max_clients: int = 100_000) -> None:
        self.limit = limit
        self.period = period
        self.max_clients = max_clients
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds until `client` may submit again, or None if it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(client)
            if hits is None:
                return None
            while hits and hits[0] <= now - self.period:
                hits.popleft()
            if len(hits) < self.limit:
                return None
            return max(1, math.ceil(hits[0] + self.period - now))

    def record(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.pop(client, None) or deque()
            hits.append(now)
            while len(hits) > self.limit:
                hits.popleft()
            self._hits[client] = hits  # most recently active last
            while len(self._hits) > self.max_clients:
                self._hits.popitem(last=False)  # forget the longest-idle client


class SharedRateLimiter:
    """The same sliding log kept in PostgreSQL (leadctl.fastpath). Its calls block on the
    database: `Intake` runs them in a thread, never on the event loop."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period

    def retry_after(self, client: str) -> int | None:
        return fastpath.rate_limit_wait(client, self.limit, self.period)

    def record(self, client: str) -> None:
        fastpath.record_rate_hit(client, self.period)


def client_address(scope: Scope, trusted: list[Network]) -> str:
    """Who is asking: the peer, or — only behind a trusted proxy — the X-Forwarded-For client.

    The rightmost address not itself a trusted proxy is taken, so a client cannot pick its own
    identity by sending an X-Forwarded-For header of its choice.
    """
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    forwarded = ""
    for name, value in scope.get("headers", []):
        if name == b"x-forwarded-for":
            forwarded += ("," if forwarded else "") + value.decode("latin-1")
    for hop in reversed([h.strip() for h in forwarded.split(",") if h.strip()]):
        if not _is_trusted(hop, trusted):
            return hop
    return peer


def _is_trusted(address: str, trusted: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)
