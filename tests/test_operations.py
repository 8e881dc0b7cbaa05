"""Operating a real `leadctl serve`: /ready and what fails it, /metrics, JSON logs, request ids."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import PG_URL, make_settings, postgres_schema, submit, wait_until

pytestmark = pytest.mark.e2e
SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
DELIVERY_STARTED = re.compile(r"delivery process started \(pid (\d+)\)")


def metric_samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of `/metrics`, keyed by (name, sorted labels)."""
    response = httpx.get(f"{url}/metrics", timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def submissions(samples: dict[Any, float], outcome: str, reason: str = "") -> float:
    key = (
        "leads_submissions_total",
        (("channel", "api"), ("outcome", outcome), ("reason", reason)),
    )
    return samples.get(key, 0.0)


def raw_request(port: int, head_lines: list[bytes]) -> tuple[int, dict[str, list[str]]]:
    """Send a hand-made GET /health (headers no HTTP client would send); status and headers."""
    request = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    request += b"".join(line + b"\r\n" for line in head_lines) + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    return int(head[0].split()[1]), headers


def json_lines(log: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.splitlines() if line.startswith("{")]


# -- /ready ---------------------------------------------------------------------------------------


def test_a_fresh_server_is_ready_and_says_why(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    response = httpx.get(f"{server.url}/ready", timeout=5)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["failed"] == []
    checks = {check["name"]: check for check in body["checks"]}
    assert list(checks) == ["database", "schema", "delivery", "outbox"]
    assert all(check["ok"] for check in checks.values())
    assert checks["delivery"]["detail"] == "the delivery process is running"
    assert httpx.get(f"{server.url}/health", timeout=5).status_code == 200  # liveness, unchanged
    assert "/ready" in httpx.get(f"{server.url}/schema/openapi.json", timeout=5).json()["paths"]


def test_ready_names_the_database_when_the_sqlite_file_is_removed(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 200
    for path in tmp_path.glob("leads.db*"):  # the file, its -wal and -shm
        path.unlink()
    response = httpx.get(f"{server.url}/ready", timeout=5)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    body = response.json()
    assert body["status"] == "unavailable" and body["failed"] == ["database"]
    assert "removed or replaced" in body["checks"][0]["detail"]
    assert str(tmp_path) not in response.text  # no file system path on a public answer


def test_ready_names_the_schema_when_it_is_behind(tmp_path: Path, make_server: Any) -> None:
    from leadctl.models import SchemaVersion

    server = make_server(make_settings(tmp_path))
    table = SchemaVersion._meta.table_name  # type: ignore[attr-defined]
    with sqlite3.connect(tmp_path / "leads.db") as conn:  # as an older leadctl's database reads
        newest = conn.execute(f"SELECT MAX(version) FROM {table}").fetchone()[0]
        conn.execute(f"UPDATE {table} SET version = ? WHERE version = ?", (newest - 1, newest))
    conn.close()
    response = httpx.get(f"{server.url}/ready", timeout=5)
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["schema"]
    schema = next(check for check in body["checks"] if check["name"] == "schema")
    assert schema["detail"] == f"version {newest - 1}, needs {newest}: run leadctl db upgrade"


@pytest.mark.postgres
def test_ready_names_the_schema_when_the_postgresql_schema_is_dropped(
    tmp_path: Path, make_server: Any
) -> None:
    import psycopg

    with postgres_schema() as url:
        schema = url.rsplit("%3D", 1)[1]
        server = make_server(make_settings(tmp_path, url))
        assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 200
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute("SET lock_timeout = '10s'")
            conn.execute(f"DROP SCHEMA {schema} CASCADE")
        response = httpx.get(f"{server.url}/ready", timeout=10)
        assert response.status_code == 503
        body = response.json()
        assert body["failed"] == ["schema"]  # the server still reaches PostgreSQL itself
        assert body["checks"][0] == {"name": "database", "ok": True, "detail": "answers"}
        assert body["checks"][1]["detail"] == "no leadctl tables in the database"
        server.stop()


def test_ready_reports_a_killed_delivery_process_until_it_is_restarted(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    started = lambda: DELIVERY_STARTED.findall(server.log.read_text())  # noqa: E731
    wait_until(started, 15, "the delivery process to start")
    seen = None
    deadline = time.monotonic() + 60
    # The server restarts it after 0.5 s, then 1 s, 2 s…: if a restart beats the first look,
    # kill the new one, and the next gap is twice as long.
    while seen is None and time.monotonic() < deadline:
        pids = started()
        os.kill(int(pids[-1]), signal.SIGKILL)
        while time.monotonic() < deadline:
            response = httpx.get(f"{server.url}/ready", timeout=5)
            if response.status_code == 503:
                seen = response.json()
                break
            if len(started()) > len(pids):
                break
            time.sleep(0.02)
    assert seen is not None, "/ready never reported the dead delivery process"
    assert seen["failed"] == ["delivery"]
    delivery = next(check for check in seen["checks"] if check["name"] == "delivery")
    assert "not running" in delivery["detail"]

    def ready_again() -> bool:
        """/ready answers 200 once the delivery process is back"""
        return httpx.get(f"{server.url}/ready", timeout=5).status_code == 200

    wait_until(ready_again, 30, "/ready to recover")
    assert "killed by SIGKILL" in server.log.read_text()


def test_ready_names_the_outbox_when_delivery_hangs(tmp_path: Path, make_server: Any) -> None:
    """A stopped (not dead) delivery process: only the outbox shows that nothing goes out."""
    settings = make_settings(tmp_path, ready_outbox_lag_seconds=1.0)
    server = make_server(settings)
    started = wait_until(
        lambda: DELIVERY_STARTED.findall(server.log.read_text()), 15, "the delivery process"
    )
    pid = int(started[-1])
    os.kill(pid, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            assert submit(client).status_code == 201

        def outbox_fails() -> dict[str, Any] | None:
            """/ready fails the outbox check"""
            response = httpx.get(f"{server.url}/ready", timeout=5)
            return response.json() if response.status_code == 503 else None

        body = wait_until(outbox_fails, 15, "/ready to fail on the outbox")
        assert body["failed"] == ["outbox"]
        outbox = next(check for check in body["checks"] if check["name"] == "outbox")
        assert "delivery is stuck" in outbox["detail"]
    finally:
        os.kill(pid, signal.SIGCONT)

    def delivered() -> bool:
        """both messages of the lead are written once the delivery process goes on"""
        return len(list((tmp_path / "mail").glob("*.eml"))) == 2

    wait_until(delivered, 20, "the messages to be delivered")
    assert httpx.get(f"{server.url}/ready", timeout=5).status_code == 200


# -- /metrics -------------------------------------------------------------------------------------


def test_metrics_count_submissions_requests_and_deliveries(
    tmp_path: Path, make_server: Any
) -> None:
    # No quarantine digest: the emails counted below are the accepted lead's two.
    server = make_server(make_settings(tmp_path, metrics=True, quarantine_digest="off"))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert submit(client).status_code == 201
        assert submit(client, email="bot@example.com", website="x").status_code == 201
        assert submit(client, email="not an address").status_code == 422
        assert client.get(f"/no-such-page-{secrets.token_hex(4)}").status_code == 404

    def delivered() -> dict[Any, float] | None:
        """the three messages of two leads are sent (a quarantined lead's go nowhere)"""
        samples = metric_samples(server.url)
        return samples if samples[("leads_deliveries_total", (("result", "sent"),))] else None

    samples = wait_until(delivered, 15, "the metrics of the deliveries")
    assert submissions(samples, "accepted") == 1
    assert submissions(samples, "quarantined") == 1
    assert submissions(samples, "refused", "invalid") == 1
    latency = (
        "leads_request_duration_seconds_count",
        (("method", "POST"), ("route", "/api/v1/leads")),
    )
    assert samples[latency] == 3
    # A made-up path adds no series of its own.
    routes = {dict(labels).get("route") for _, labels in samples}
    assert "unmatched" in routes and not any("no-such-page" in str(r) for r in routes)
    assert samples[("leads_database_up", ())] == 1
    assert samples[("leads_outbox_messages", (("state", "sent"),))] == 2
    assert samples[("leads_outbox_messages", (("state", "pending"),))] == 0
    assert samples[("leads_outbox_oldest_pending_age_seconds", ())] == 0
    assert samples[("leads_deliveries_total", (("result", "failed"),))] == 0
    assert samples[("leads_deliveries_total", (("result", "dead"),))] == 0


def test_metrics_are_off_by_default_and_never_in_the_api_document(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    assert httpx.get(f"{server.url}/metrics", timeout=5).status_code == 404
    on = make_server(make_settings(tmp_path, metrics=True))
    assert httpx.get(f"{on.url}/metrics", timeout=5).status_code == 200
    assert "/metrics" not in httpx.get(f"{on.url}/schema/openapi.json", timeout=5).json()["paths"]


@pytest.mark.postgres
def test_metrics_of_two_workers_count_every_submission_whichever_answers(
    tmp_path: Path, make_server: Any
) -> None:
    with postgres_schema() as url:  # several workers need PostgreSQL
        server = make_server(make_settings(tmp_path, url, metrics=True), workers=2)
        for n in range(4):  # a new connection each: the kernel spreads them over both workers
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert submit(client, email=f"p{n}@example.com").status_code == 201
        for _ in range(6):
            assert submissions(metric_samples(server.url), "accepted") == 4
        server.stop()


# -- logs and request ids -------------------------------------------------------------------------


def test_json_logs_carry_the_request_id_echoed_in_the_response(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path), LEADS_LOG_FORMAT="json")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        mine = submit(client, headers={"X-Request-ID": "trace-42.a:b"})
        generated = client.get("/ready")
    assert mine.status_code == 201 and mine.headers["x-request-id"] == "trace-42.a:b"
    new_id = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id)
    log = server.wait_log(new_id)
    lines = log.splitlines()
    # Every line but the delivery process's own (see test_the_delivery_process_logs_json_too).
    assert all(
        line.startswith("{") or re.match(r"\S+ \S+ \w+ leadctl\.outbox: ", line) for line in lines
    ), log
    records = json_lines(log)
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = {r["request_id"]: r for r in records if r["logger"] == "intake.access"}
    post = access["trace-42.a:b"]
    assert post["method"] == "POST" and post["path"] == "/api/v1/leads" and post["status"] == 201
    assert post["client"] == "127.0.0.1" and post["lead"] == mine.json()["reference"]
    assert isinstance(post["duration_ms"], float)
    assert access[new_id]["lead"] is None and access[new_id]["path"] == "/ready"
    assert "color_message" not in log  # uvicorn's copy of a line with terminal colours


def test_the_delivery_process_logs_json_too(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path), LEADS_LOG_FORMAT="json")
    with httpx.Client(base_url=server.url, timeout=10) as client:
        assert submit(client).status_code == 201
    log = server.wait_log("mail sent", timeout=15)
    assert "mail sent" in log
    assert all(line.startswith("{") for line in log.splitlines()), log


@pytest.mark.parametrize(
    ("attack", "raw"),
    [
        ("escape sequence", b"X-Request-ID: ok\x1b]0;pwned\x07\x1b[2J"),
        ("10 KB", b"X-Request-ID: " + b"a" * 10_240),
        ("two of them", b"X-Request-ID: first\r\nX-Request-ID: second"),
        ("spaces", b"X-Request-ID: rm -rf /"),
        ("latin-1", b"X-Request-ID: caf\xe9"),
        ("CRLF injection", b"X-Request-ID: abc\r\nSet-Cookie: stolen=1"),
    ],
)
def test_a_hostile_request_id_is_replaced_never_echoed(
    tmp_path: Path, make_server: Any, attack: str, raw: bytes
) -> None:
    server = make_server(make_settings(tmp_path))
    status, headers = raw_request(server.port, [raw])
    assert status in (200, 400, 431), attack
    given = raw.split(b": ", 1)[1]
    for echoed in headers.get("x-request-id", []):
        assert SANE_ID.fullmatch(echoed), echoed
        assert echoed.encode("latin-1") != given
    assert "set-cookie" not in headers
    if status == 200:
        (echoed,) = headers["x-request-id"]
        # A CRLF only ends the header: "abc" is a sane id of its own, and kept.
        assert echoed == "abc" if attack == "CRLF injection" else echoed != "ok"
        log = server.wait_log(echoed)
        line = next(line for line in log.splitlines() if echoed in line)
        assert "\x1b" not in log and "\x07" not in log and "a" * 200 not in line


def test_the_access_log_client_follows_the_trusted_proxy_rule(
    tmp_path: Path, make_server: Any
) -> None:
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    direct = make_server(make_settings(tmp_path, trusted_proxies="10.9.9.9"))
    httpx.get(f"{direct.url}/health", headers={**forwarded, "X-Request-ID": "spoof"}, timeout=5)
    line = next(x for x in direct.wait_log("request_id=spoof").splitlines() if "=spoof" in x)
    assert "client=127.0.0.1 " in line and "203.0.113.7" not in line

    proxied = make_server(
        make_settings(tmp_path, trusted_proxies="127.0.0.1"), LEADS_LOG_FORMAT="json"
    )
    httpx.get(f"{proxied.url}/health", headers={**forwarded, "X-Request-ID": "via"}, timeout=5)
    # Through a trusted proxy, a client's forged hop with a terminal escape in it: a one-byte
    # CSI (an ESC itself is refused by the HTTP parser, with 400).
    raw_request(proxied.port, [b"X-Forwarded-For: \x9b[2J, 127.0.0.1", b"X-Request-ID: forged"])
    records = json_lines(proxied.wait_log('"forged"'))
    access = {r["request_id"]: r for r in records if r["logger"] == "intake.access"}
    assert access["via"]["client"] == "203.0.113.7"  # the rightmost hop not a trusted proxy
    assert access["forged"]["client"] == "\\x9b[2J"
