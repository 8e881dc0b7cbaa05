"""Faults against the real server: kill -9 under load, a locked database, SIGTERM, slow clients."""

from __future__ import annotations

import contextlib
import hashlib
import signal
import socket
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from intake.errors import STORAGE_UNAVAILABLE
from tests import samples
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e


def _body(i: int) -> tuple[dict[str, str], bytes]:
    pdf = samples.pdf(30_000 + i)  # a distinct file each, so every SHA-256 can be checked
    fields = {"first_name": "Load", "last_name": f"Test{i}", "email": f"load{i}@example.com"}
    return {**fields, "consent": "true"}, pdf


def _load(
    url: str, count: int, results: dict[int, Any], stop_after: threading.Event | None = None
) -> list[threading.Thread]:
    """`count` submissions from 8 threads; results[i] is (status, reference) or the exception."""

    def worker(indices: list[int]) -> None:
        with httpx.Client(base_url=url, timeout=15) as client:
            for i in indices:
                data, pdf = _body(i)
                try:
                    r = client.post(
                        "/api/v1/leads",
                        data=data,
                        files={"resume": ("cv.pdf", pdf, "application/pdf")},
                    )
                    results[i] = (
                        r.status_code,
                        r.json().get("reference") if r.status_code == 201 else None,
                    )
                except httpx.HTTPError as exc:
                    results[i] = exc

    threads = [threading.Thread(target=worker, args=(list(range(k, count, 8)),)) for k in range(8)]
    for t in threads:
        t.start()
    return threads


def _stored(db_file: Path) -> dict[str, tuple[str, int]]:
    """reference → (resume sha256, outbox rows) for every lead; asserts no half-written lead."""
    with sqlite3.connect(db_file) as conn:
        rows = conn.execute(
            "SELECT l.reference, r.sha256, r.data, (SELECT COUNT(*) FROM outbox_message o WHERE o.lead_id = l.id) "
            "FROM lead l LEFT JOIN resume r ON r.lead_id = l.id"
        ).fetchall()
    result = {}
    for reference, sha, data, messages in rows:
        assert sha is not None, f"lead {reference} has no resume"
        assert hashlib.sha256(data).hexdigest() == sha, f"resume of {reference} is corrupt"
        result[reference] = (sha, messages)
    return result


def test_kill_9_under_load_loses_no_acknowledged_lead(tmp_path: Path, make_server: Any) -> None:
    settings = make_settings(tmp_path)
    server = make_server(settings)
    results: dict[int, Any] = {}
    threads = _load(server.url, 80, results)
    while len(results) < 25:
        time.sleep(0.01)
    server.stop(kill=True)
    for t in threads:
        t.join(30)
    acknowledged = {i: r[1] for i, r in results.items() if isinstance(r, tuple) and r[0] == 201}
    assert len(acknowledged) >= 25
    server.start()
    stored = _stored(tmp_path / "leads.db")
    for i, reference in acknowledged.items():
        assert reference in stored, f"acknowledged lead {reference} was lost"
        assert stored[reference] == (hashlib.sha256(_body(i)[1]).hexdigest(), 2)
    deadline = time.monotonic() + 30  # a message claimed at the kill waits out its lease (5 s)
    while time.monotonic() < deadline:
        with sqlite3.connect(tmp_path / "leads.db") as conn:
            unsent = conn.execute(
                "SELECT COUNT(*) FROM outbox_message WHERE status != 'sent'"
            ).fetchone()[0]
        if unsent == 0:
            break
        time.sleep(0.2)
    assert unsent == 0
    assert len(list((tmp_path / "mail").glob("*.eml"))) == 2 * len(stored)
    print(
        f"\nkill -9: {len(acknowledged)} acknowledged, {len(stored)} stored, {2 * len(stored)} emails delivered"
    )


def test_a_locked_database_answers_503_and_the_server_recovers(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path, sqlite_busy_timeout_ms=300))
    data, pdf = _body(1)
    files = {"resume": ("cv.pdf", pdf, "application/pdf")}
    holder = sqlite3.connect(tmp_path / "leads.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        response = httpx.post(f"{server.url}/api/v1/leads", data=data, files=files, timeout=10)
        assert response.status_code == 503
        assert response.headers["retry-after"]
        # The database's own words (here "database is locked") stay in the server's log.
        assert response.json()["errors"][0]["message"] == STORAGE_UNAVAILABLE
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert _stored(tmp_path / "leads.db") == {}
    again = httpx.post(f"{server.url}/api/v1/leads", data=data, files=files, timeout=10)
    assert again.status_code == 201  # recovered without a restart
    assert len(_stored(tmp_path / "leads.db")) == 1


def test_sigterm_under_load_finishes_in_flight_requests(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    results: dict[int, Any] = {}
    threads = _load(server.url, 60, results)
    while len(results) < 15:
        time.sleep(0.01)
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(30)
    server.proc.wait(30)
    statuses = [r[0] for r in results.values() if isinstance(r, tuple)]
    assert all(code == 201 for code in statuses), statuses  # no 5xx: answered or never accepted
    acknowledged = {r[1] for r in results.values() if isinstance(r, tuple)}
    stored = _stored(tmp_path / "leads.db")
    assert acknowledged <= set(stored)
    assert "Waiting for application shutdown" in server.log.read_text()
    refused = sum(1 for r in results.values() if not isinstance(r, tuple))
    print(
        f"\nSIGTERM: {len(acknowledged)} acknowledged, all {len(stored)} stored; {refused} never accepted"
    )


def test_a_slow_client_is_cut_off_without_starving_others(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path, body_timeout_seconds=2.0))
    data, pdf = _body(1)
    body = (
        b'--b\r\nContent-Disposition: form-data; name="first_name"\r\n\r\n'
        + b"x" * 100
        + b"\r\n--b--\r\n"
    )
    slow = socket.create_connection(("127.0.0.1", server.port))
    slow.sendall(
        b"POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
    )
    started = time.monotonic()
    answer = b""
    slow.settimeout(0.05)
    fast_done = None
    for byte in body:
        try:
            slow.sendall(bytes([byte]))
        except OSError:
            break
        if fast_done is None:  # meanwhile, a normal client is served at once
            t0 = time.monotonic()
            r = httpx.post(
                f"{server.url}/api/v1/leads",
                data=data,
                files={"resume": ("cv.pdf", pdf, "application/pdf")},
            )
            assert r.status_code == 201
            fast_done = time.monotonic() - t0
        with contextlib.suppress(TimeoutError, OSError):
            answer += slow.recv(4096)
        if answer:
            break
        time.sleep(0.25)  # about 4 bytes a second
    slow.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < 6
    assert fast_done is not None and fast_done < 1.0


def test_a_refused_flood_request_is_closed_without_reading_its_body(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path, rate_limit="1/minute", refusal_delay_seconds=0.5))
    data, pdf = _body(1)
    first = httpx.post(
        f"{server.url}/api/v1/leads",
        data=data,
        files={"resume": ("cv.pdf", pdf, "application/pdf")},
    )
    assert first.status_code == 201
    flood = socket.create_connection(("127.0.0.1", server.port))
    flood.settimeout(5)
    # Announce 5 MB, send only the headers and 1 KB of it: the answer must not wait for the rest.
    flood.sendall(
        b"POST /api/v1/leads HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        b"Content-Length: 5000000\r\n\r\n" + b"x" * 1024
    )
    answer = b""
    started = time.monotonic()
    with contextlib.suppress(ConnectionResetError):
        while chunk := flood.recv(65536):  # b"" once the server has closed the connection
            answer += chunk
    waited = time.monotonic() - started
    flood.close()
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 429"), answer[:200]
    assert b"\r\nconnection: close" in head and b"\r\nretry-after: " in head
    assert 0.5 <= waited < 5  # held for LEADS_REFUSAL_DELAY_SECONDS, never for the 5 MB
    assert httpx.get(f"{server.url}/health").status_code == 200
