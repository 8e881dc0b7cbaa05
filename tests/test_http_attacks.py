"""Attacks on the running server over HTTP: oversized and trickled heads, spoofed client addresses,
overflowing parameters, hostile bodies, framing, and quarantined leads asked for by id."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadctl import attorneys, db, schema, submissions
from leadctl.models import database
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import BIN, make_settings, send_raw, server_env, submit

pytestmark = pytest.mark.e2e


def _raw(port: int, data: bytes, timeout: float = 15.0) -> bytes:
    return send_raw(port, data, timeout)


def _seed(s: Settings) -> dict[str, str]:
    """An admin, an attorney, and a quarantined lead in the server's database, before it starts."""
    db.bind(s.database_url)
    schema.ensure_schema()
    tokens = {
        "admin": attorneys.add("Ann Lee", "ann@firm.example", "admin")[1].secret,
        "attorney": attorneys.add("Bob Roe", "bob@firm.example")[1].secret,
    }
    spam = submissions.submit(
        check_prospect("Spam", "Bot", "bot@example.com"),
        check_resume("cv.pdf", samples.pdf(2000), s.max_resume_bytes),
        s,
        quarantine_reason="the hidden website field was filled",
    )
    tokens["quarantined_id"] = str(spam.lead.id)
    tokens["quarantined_ref"] = spam.lead.reference
    database.obj.close()
    return tokens


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- the request head ----------------------------------------------------------------------------


def test_a_head_over_32_kib_is_refused_without_reading_further(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    huge = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n"
    answer = _raw(server.port, huge)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"larger than 32 KiB" in answer
    # Many headers that are each small add up the same way.
    many = b"GET /health HTTP/1.1\r\n" + b"".join(
        b"X-H%d: %s\r\n" % (i, b"v" * 100) for i in range(400)
    )
    assert _raw(server.port, many + b"\r\n").startswith(b"HTTP/1.1 431 ")
    # A 200 MB header is never read: the connection is closed after the first 32 KiB.
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nX-Flood: ")
        sent = 0
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            for _ in range(200 * 16):
                sock.sendall(b"a" * 65536)
                sent += 65536
        assert sent < 50 * 1024 * 1024
    # A head just under the limit, with a body, is served.
    ok = httpx.get(f"{server.url}/health", headers={"X-Pad": "p" * 30_000})
    assert ok.status_code == 200


def test_trickled_headers_are_cut_off(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path), LEADS_HEADER_TIMEOUT_SECONDS="1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = b""
        # One byte of a header at a time, each before any sensible per-read timeout: the whole
        # head must still arrive within the header timeout.
        while time.monotonic() - started < 15:
            readable, _, _ = select.select([sock], [], [], 0.2)
            if readable:
                answer = sock.recv(65536)
                break
            try:
                sock.sendall(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
        assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
        assert b"headers took too long" in answer
    # A connection that says nothing at all is closed too.
    assert _raw(server.port, b"") == b""
    log = server.wait_log("took too long")
    assert "refused a request head" in log


def test_the_access_log_shows_a_hostile_path_escaped(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    path = b"/api/v1/leads/%1b%5b2J%e2%80%ae"
    answer = _raw(server.port, b"GET " + path + b" HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 401 ")
    log = server.wait_log(" 401 ")
    assert "GET /api/v1/leads/\\x1b[2J\\u202e 401" in log
    assert "\x1b[2J" not in log and "\u202e" not in log


# -- who is the client ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "proxies", "forwarded_for", "expected"),
    [
        # A spoofed header from an untrusted peer changes nothing: the third is over the limit.
        ("2/minute", "", lambda i: f"203.0.113.{i}", [201, 201, 429]),
        # Behind a trusted proxy its X-Forwarded-For names the client: two clients here.
        ("1/minute", "127.0.0.1", lambda i: f"203.0.113.{i // 2}", [201, 429, 201]),
    ],
    ids=["untrusted-peer", "trusted-proxy"],
)
def test_only_a_trusted_proxy_names_the_client(
    tmp_path: Path,
    make_server: Any,
    rate: str,
    proxies: str,
    forwarded_for: Any,
    expected: list[int],
) -> None:
    server = make_server(make_settings(tmp_path, rate_limit=rate, trusted_proxies=proxies))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        statuses = [
            submit(
                client,
                email=f"p{i}@example.com",
                resume=samples.pdf(1000 + i),
                headers={"X-Forwarded-For": forwarded_for(i), "Forwarded": f"for=198.51.100.{i}"},
            ).status_code
            for i in range(3)
        ]
    assert statuses == expected


# -- parameters and bodies -----------------------------------------------------------------------


def test_overflowing_parameters_and_hostile_bodies_get_a_4xx_naming_the_field(
    tmp_path: Path, make_server: Any
) -> None:
    s = make_settings(tmp_path)
    seed = _seed(s)
    server = make_server(s)
    admin = _auth(seed["admin"])
    with httpx.Client(base_url=server.url, timeout=30, headers=admin) as client:
        for field, value in (
            ("since", "99999999d"),
            ("until", "99999999999999999999w"),
            ("overdue", "99999999d"),
            ("since", "0001-01-01T00:00+05:00"),
            ("since", "9" * 5000 + "d"),
        ):
            answer = client.get("/api/v1/leads", params={field: value})
            assert answer.status_code == 422, (field, value, answer.text)
            assert answer.json()["errors"][0]["field"] == field
        stats = client.get("/api/v1/stats", params={"since": "99999999d"})
        assert stats.status_code == 422
        assert stats.json()["errors"][0]["field"] == "since"
        for cursor in ("99999999999999999999", "-1", "abc"):
            refused = client.get("/api/v1/leads", params={"cursor": cursor})
            assert refused.status_code == 422
            assert refused.json()["errors"][0]["field"] == "cursor"

        lead = client.get("/api/v1/leads").json()["items"]
        assert lead == []  # only the quarantined lead exists
        nested = '{"note": ' + "[" * 100_000 + "]" * 100_000 + "}"
        deep = client.post(
            f"/api/v1/leads/{seed['quarantined_id']}/reach-out",
            content=nested,
            headers={"Content-Type": "application/json"},
        )
        assert 400 <= deep.status_code < 500, deep.text
        huge = client.post(
            f"/api/v1/leads/{seed['quarantined_id']}/notes",
            content=json.dumps({"text": "x" * 2_000_000}),
            headers={"Content-Type": "application/json"},
        )
        assert huge.status_code == 413, huge.text
        assert "body" in huge.json()["errors"][0]["message"]
    assert "internal error" not in server.log.read_text()


def test_a_quarantined_lead_is_hidden_by_id_from_attorneys(
    tmp_path: Path, make_server: Any
) -> None:
    s = make_settings(tmp_path)
    seed = _seed(s)
    server = make_server(s)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for ident in (seed["quarantined_id"], seed["quarantined_ref"]):
            hidden = client.get(f"/api/v1/leads/{ident}", headers=_auth(seed["attorney"]))
            assert hidden.status_code == 404, hidden.text
            assert (
                client.get(
                    "/api/v1/leads?quarantined=true", headers=_auth(seed["attorney"])
                ).status_code
                == 403
            )
            seen = client.get(f"/api/v1/leads/{ident}", headers=_auth(seed["admin"]))
            assert seen.status_code == 200
            assert seen.json()["quarantined"] is True
            # Nobody changes or downloads a suspected spammer's lead by id.
            for token in (seed["admin"], seed["attorney"]):
                assert (
                    client.get(f"/api/v1/leads/{ident}/resume", headers=_auth(token)).status_code
                    == 404
                )


# -- pages ---------------------------------------------------------------------------------------


def test_html_pages_carry_a_strict_policy_and_refuse_framing(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/")
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "script-src" not in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "<script" not in page.text and "<style" not in page.text
        assert " style=" not in page.text
        css = client.get("/form.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        # The page after a failed submission carries the same policy.
        again = client.post("/", data={"first_name": ""}, files={"resume": ("a.pdf", b"")})
        assert "text/html" in again.headers["content-type"]
        assert again.headers["content-security-policy"] == policy
        # JSON answers are not sniffed either.
        assert client.get("/health").headers["x-content-type-options"] == "nosniff"
        document = client.get("/schema").text.lower()
        for word in ("trap", "honeypot", "website", "leave empty", "bot"):
            assert word not in document


def test_a_firm_may_allow_its_own_site_to_frame_the_form(tmp_path: Path, make_server: Any) -> None:
    server = make_server(
        make_settings(tmp_path, frame_ancestors="https://www.firm.example https://*.firm.example")
    )
    page = httpx.get(f"{server.url}/")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors https://www.firm.example https://*.firm.example" in policy
    assert "x-frame-options" not in page.headers


@pytest.mark.parametrize(
    "value",
    ["https://x.example; script-src *", "'unsafe-inline'", "javascript:alert(1)", "*"],
)
def test_a_frame_ancestor_that_is_not_an_origin_stops_the_server_at_once(
    tmp_path: Path, value: str
) -> None:
    env = server_env(make_settings(tmp_path), LEADS_FRAME_ANCESTORS=value)
    out = subprocess.run(
        [str(BIN / "leadctl"), "serve", "--port", "1"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1, out.stderr
    assert "LEADS_FRAME_ANCESTORS" in out.stderr and "Traceback" not in out.stderr
