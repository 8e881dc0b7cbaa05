"""Several `leadctl serve` on one PostgreSQL keep every promise; SQLite is one server process.

Two real servers (uvicorn, their own delivery processes) on two ports share one private schema:
the rate limit, idempotency keys, double clicks, round robin and exactly-once mail must hold
across them as they do within one.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import attorneys, db
from leadctl.models import database
from leadctl.schema import ensure_schema
from leadctl.settings import Settings
from tests.conftest import (
    BIN,
    LiveServer,
    SmtpSink,
    free_port,
    make_settings,
    postgres_schema,
    smtp_settings,
    submit,
    wait_until,
)

pytestmark = pytest.mark.postgres


@dataclass
class Pair:
    """Two servers on one database, and a way to read that database from the test."""

    a: LiveServer
    b: LiveServer
    url: str

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url) as conn:
            return list(conn.execute(sql, params).fetchall())


@contextlib.contextmanager
def pair_factory(tmp_path: Path, make_server: Any) -> Iterator[Callable[..., Pair]]:
    """A fresh schema, and a factory: `attorneys` active attorneys, then two servers on it."""
    with postgres_schema() as url:

        def start(count: int = 3, adjust: Callable[[Settings], Settings] | None = None) -> Pair:
            settings = make_settings(tmp_path, url)
            settings = adjust(settings) if adjust else settings
            db.bind(url)
            try:
                ensure_schema()
                for n in range(count):
                    attorneys.add(f"Attorney {n}", f"a{n}@firm.example")
            finally:
                database.obj.close()
            return Pair(make_server(settings), make_server(settings), url)

        yield start


@pytest.fixture
def start_pair(tmp_path: Path, make_server: Any) -> Iterator[Callable[..., Pair]]:
    with pair_factory(tmp_path, make_server) as start:
        yield start


def both_at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """Run `calls` on threads released together, so their requests overlap."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], httpx.Response]) -> httpx.Response:
        barrier.wait(timeout=10)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def client(server: LiveServer, **kw: Any) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=30, **kw)


# -- SQLite is one process ------------------------------------------------------------------------


def test_serve_refuses_several_workers_on_sqlite_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "LEADS_DATABASE_URL": f"sqlite:///{tmp_path}/leads.db"}
    run = subprocess.run(
        [str(BIN / "leadctl"), "serve", "--port", str(port), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=15,
        check=False,
    )
    assert run.returncode == 2 and run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "PostgreSQL" in lines[0] and "--workers 2" in lines[0]
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "leads.db").exists()  # refused before anything was opened


# -- the rate limit -------------------------------------------------------------------------------


def test_the_rate_limit_is_one_limit_across_two_servers(start_pair: Callable[..., Pair]) -> None:
    pair = start_pair(adjust=lambda s: s.replace(rate_limit="3/minute"))
    servers = [pair.a, pair.b, pair.a]
    for n, server in enumerate(servers):
        with client(server) as c:
            assert submit(c, email=f"p{n}@example.com").status_code == 201
    for server in (pair.b, pair.a):
        with client(server) as c:
            # A spoofed X-Forwarded-For changes nothing: no proxy is trusted.
            refused = submit(c, email="p9@example.com", headers={"X-Forwarded-For": "10.9.9.9"})
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
    # Another client is a client of its own, on either server.
    with client(pair.b, transport=httpx.HTTPTransport(local_address="127.0.0.2")) as other:
        assert submit(other, email="other@example.com").status_code == 201
    assert pair.query("SELECT COUNT(*) FROM lead") == [(4,)]
    assert pair.query("SELECT COUNT(DISTINCT client) FROM rate_limit_hit") == [(2,)]


def test_a_refused_or_replayed_submission_costs_nothing_on_either_server(
    start_pair: Callable[..., Pair],
) -> None:
    pair = start_pair(adjust=lambda s: s.replace(rate_limit="2/minute"))
    with client(pair.a) as a, client(pair.b) as b:
        for c in (a, b, a):
            assert submit(c, email="not an address").status_code == 422
        first = submit(a, headers={"Idempotency-Key": "k1"})
        again = submit(b, headers={"Idempotency-Key": "k1"})  # the same answer, free
        assert first.status_code == again.status_code == 201
        assert first.json()["reference"] == again.json()["reference"]
        assert submit(b, email="second@example.com").status_code == 201
        assert submit(a, email="third@example.com").status_code == 429


HOSTILE_HOPS = [
    "ÿ" * 3000,
    "'; DROP TABLE rate_limit_hit; --",
    "\u00e9\u00a0\\x00%s%%?",
]


@pytest.mark.parametrize("hop", HOSTILE_HOPS, ids=["long", "sql", "odd"])
def test_a_trusted_proxys_forwarded_client_of_any_text_is_limited_not_an_error(
    start_pair: Callable[..., Pair], hop: str
) -> None:
    pair = start_pair(
        adjust=lambda s: s.replace(rate_limit="1/minute", trusted_proxies="127.0.0.1/32")
    )
    header = {"X-Forwarded-For": hop.encode("latin-1")}  # raw bytes, as a proxy passes them
    with client(pair.a) as a, client(pair.b) as b:
        assert submit(a, email="one@example.com", headers=header).status_code == 201
        assert submit(b, email="two@example.com", headers=header).status_code == 429
        # The proxy's other client is not this one.
        other = {"X-Forwarded-For": "203.0.113.7"}
        assert submit(b, email="three@example.com", headers=other).status_code == 201
    assert pair.query("SELECT COUNT(*), MAX(LENGTH(client)) FROM rate_limit_hit") == [(2, 64)]


def test_an_ipv6_64_is_one_client_across_both_servers(start_pair: Callable[..., Pair]) -> None:
    pair = start_pair(
        adjust=lambda s: s.replace(rate_limit="1/minute", trusted_proxies="127.0.0.1/32")
    )
    with client(pair.a) as a, client(pair.b) as b:
        one = {"X-Forwarded-For": "2001:db8:1:2::1"}
        assert submit(a, email="one@example.com", headers=one).status_code == 201
        neighbour = {"X-Forwarded-For": "2001:db8:1:2:0:0:0:a1"}
        assert submit(b, email="two@example.com", headers=neighbour).status_code == 429
    assert pair.query("SELECT COUNT(DISTINCT client) FROM rate_limit_hit") == [(1,)]


# -- idempotency keys and double clicks -----------------------------------------------------------


def test_one_key_sent_to_both_servers_at_once_makes_one_lead(
    start_pair: Callable[..., Pair],
) -> None:
    pair = start_pair()
    with client(pair.a) as a, client(pair.b) as b:
        for n in range(6):  # several rounds: the race must be lost by neither side
            key = {"Idempotency-Key": f"retry-{n}"}
            email = f"key{n}@example.com"
            answers = both_at_once(
                [
                    lambda email=email, key=key: submit(a, email=email, headers=key),
                    lambda email=email, key=key: submit(b, email=email, headers=key),
                ]
            )
            assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
            assert answers[0].json()["reference"] == answers[1].json()["reference"]
    assert pair.query("SELECT COUNT(*) FROM lead") == [(6,)]
    assert pair.query("SELECT COUNT(*) FROM idempotency_key") == [(6,)]


def test_one_key_with_two_bodies_on_two_servers_is_a_conflict_not_a_second_lead(
    start_pair: Callable[..., Pair],
) -> None:
    pair = start_pair()
    key = {"Idempotency-Key": "same"}
    with client(pair.a) as a, client(pair.b) as b:
        answers = both_at_once(
            [
                lambda: submit(a, email="x@example.com", headers=key),
                lambda: submit(b, email="y@example.com", headers=key),
            ]
        )
    assert sorted(r.status_code for r in answers) == [201, 409]
    assert pair.query("SELECT COUNT(*) FROM lead") == [(1,)]


def test_a_double_click_landing_on_both_servers_makes_one_lead(
    start_pair: Callable[..., Pair],
) -> None:
    pair = start_pair()
    with client(pair.a) as a, client(pair.b) as b:
        for n in range(6):
            email = f"click{n}@example.com"
            answers = both_at_once(
                [lambda e=email: submit(a, email=e), lambda e=email: submit(b, email=e)]
            )
            assert [r.status_code for r in answers] == [201, 201], [r.text for r in answers]
            assert answers[0].json()["reference"] == answers[1].json()["reference"]
        # The same body again a moment later, on the other server, is still the same lead.
        later = submit(a if n % 2 else b, email=f"click{n}@example.com")
        assert later.json()["reference"] == answers[0].json()["reference"]
    assert pair.query("SELECT COUNT(*) FROM lead") == [(6,)]


# -- round robin ----------------------------------------------------------------------------------


def test_round_robin_stays_strict_with_two_servers_assigning_at_once(
    start_pair: Callable[..., Pair],
) -> None:
    pair = start_pair(count=3)
    total = 30
    clients = [client(pair.a), client(pair.b)]
    try:
        calls = [
            (lambda n=n: submit(clients[n % 2], email=f"rr{n}@example.com")) for n in range(total)
        ]
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda call: call(), calls))
    finally:
        for c in clients:
            c.close()
    assert [r.status_code for r in answers] == [201] * total
    # Lead ids are drawn while the round-robin lock is held: their order is the order in which
    # attorneys were assigned, on whichever server.
    order = [row[0] for row in pair.query("SELECT attorney_id FROM lead ORDER BY id")]
    assert len(order) == total and None not in order
    for i in range(len(order) - 2):
        assert len(set(order[i : i + 3])) == 3, f"not round robin at lead {i}: {order}"


# -- exactly-once mail ----------------------------------------------------------------------------


def test_two_servers_deliver_each_message_exactly_once(
    start_pair: Callable[..., Pair], smtp_sink: SmtpSink
) -> None:
    pair = start_pair(adjust=lambda s: smtp_settings(s, smtp_sink.port))
    leads = 12
    with client(pair.a) as a, client(pair.b) as b:
        calls = [
            (lambda n=n: submit((a, b)[n % 2], email=f"m{n}@example.com")) for n in range(leads)
        ]
        with ThreadPoolExecutor(4) as pool:
            assert {r.status_code for r in pool.map(lambda call: call(), calls)} == {201}
    wait_until(
        lambda: (
            pair.query("SELECT COUNT(*) FROM outbox_message WHERE status = 'sent'")
            == [(2 * leads,)]
        ),
        30,
        "every message marked sent",
    )
    received = smtp_sink.wait_for(2 * leads, timeout=10)
    ids = [msg["Message-ID"] for _rcpt, msg in received]
    assert len(received) == 2 * leads and len(set(ids)) == 2 * leads
    assert pair.query("SELECT COUNT(*) FROM outbox_message") == [(2 * leads,)]


def _boot(start: Any, secrets: list[bytes], failures: list[BaseException]) -> None:
    """What a server process does first: the schema, then the form's shared secret."""
    from leadctl import db, schema, submissions

    try:
        start.wait(10)
        schema.ensure_schema()
        secrets.append(submissions.shared_secret("form-token"))
    except BaseException as exc:
        failures.append(exc)
    finally:
        db.close_connection()


@pytest.mark.postgres
def test_processes_starting_at_once_on_a_new_database_take_turns() -> None:
    """Two server processes creating the schema and the form secret at the same moment: one
    creates, the other waits and finds them (a CREATE TYPE collision and a duplicate key before)."""
    import threading

    from leadctl import db

    for _ in range(3):
        with postgres_schema() as url:
            db.bind(url)
            start = threading.Barrier(2)
            secrets: list[bytes] = []
            failures: list[BaseException] = []
            threads = [
                threading.Thread(target=_boot, args=(start, secrets, failures)) for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
            assert failures == []
            assert len(secrets) == 2 and secrets[0] == secrets[1]
