"""Per-client rate limiting of accepted submissions, with `Retry-After`: in memory for one
process (SQLite), in the database for several servers on one PostgreSQL.

Only accepted submissions count: a refused one (422, 413, 415) costs nothing, so a person
correcting a typo is never locked out. On PostgreSQL the log is shared (leadctl.fastpath),
so N servers behind a load balancer allow the limit once, not N times.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import threading
import time
from collections import OrderedDict, deque
from typing import Any, cast

import anyio.to_thread
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from leadctl import fastpath
from leadctl.settings import Network

log = logging.getLogger(__name__)

# Keys of the request's scope through which `shared_limit` hands the shared log's answer to
# `Intake.retry_after` (checked before the body is read) and takes `Intake.accepted`'s count.
WAIT_KEY = "leadctl.retry_after"
COUNT_KEY = "leadctl.count_client"


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
    database: `shared_limit` runs them in a thread, never on the event loop."""

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period

    def retry_after(self, client: str) -> int | None:
        return fastpath.rate_limit_wait(client, self.limit, self.period)

    def record(self, client: str) -> None:
        fastpath.record_rate_hit(client, self.period)


def shared_limit(app: ASGIApp) -> ASGIApp:
    """Middleware (outside `flood_gate`) that asks the shared log on a worker thread.

    Before the handler: the client's wait, left in the scope for `flood_gate`. After an accepted
    submission: its hit is stored before the answer's first byte leaves, so a client that waits
    for its 201 is always counted by the time it sends again, on whichever server. If the
    database cannot answer, the request goes on uncounted: the submission itself then gets the
    usual "try again" answer, and a working database is not made to wait on the limiter.
    """
    from intake.public import RATE_LIMITED  # public imports this module

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["route_handler"].opt.get(RATE_LIMITED) if scope["type"] == "http" else None
        state = scope["litestar_app"].state
        limiter = getattr(state.get("intake"), "limiter", None) if kind else None
        if not isinstance(limiter, SharedRateLimiter):
            await app(scope, receive, send)
            return
        shared = cast(dict[str, Any], scope)
        client = client_address(scope, state.intake.trusted_proxies)
        try:
            shared[WAIT_KEY] = await anyio.to_thread.run_sync(limiter.retry_after, client)
        except Exception:  # the submission itself reports the database's state
            log.warning("the shared rate limit could not be read", exc_info=True)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and shared.pop(COUNT_KEY, False):
                try:
                    await anyio.to_thread.run_sync(limiter.record, client)
                except Exception:  # the lead is stored: its answer must go out
                    log.warning("the shared rate limit could not count a submission", exc_info=True)
            await send(message)

        await app(scope, receive, counting_send)

    return middleware


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
