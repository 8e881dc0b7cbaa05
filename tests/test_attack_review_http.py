"""An outsider's attack review of the HTTP layer, each finding a test: backtracking on an
over-long part header (H1), uploads in flight without a cap (H2), a request head allowed twice
its limit (H3) and JSON nested past the decoder's depth (H4)."""

from __future__ import annotations

import contextlib
import functools
import json
import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar.testing import TestClient

from intake import create_app
from intake.form_parser import _limit_error, _overlong_header, disposition_name
from intake.submission import UploadSlots
from leadctl import attorneys
from leadctl.models import database
from leadctl.settings import Settings
from tests import samples
from tests.conftest import (
    make_settings,
    read_until_closed,
    send_raw,
    serve_in_thread,
    submit,
    wait_until,
)

BOUNDARY = b"HOLD"
A, B, C = "203.0.113.1", "203.0.113.2", "203.0.113.3"


def _raw(port: int, data: bytes, timeout: float = 60.0) -> bytes:
    return send_raw(port, data, timeout)


def _post(path: str, body: bytes, boundary: bytes = BOUNDARY, client: str | None = None) -> bytes:
    forwarded = f"X-Forwarded-For: {client}\r\n".encode() if client else b""
    return (
        b"POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n%s"
        b"Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n\r\n"
        % (path.encode(), forwarded, boundary, len(body))
    ) + body


def _in_time(work: Callable[[], object], seconds: float = 120.0) -> object:
    """Run `work` on a thread and return its value; fail if it has not ended in `seconds` (a
    bound minutes away from what a linear scan takes: a quadratic one does not end in it)."""
    result: list[object] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), "the parse did not end: its work grows faster than its input"
    return result[0]


# -- H1: finding which field an over-long part header belonged to is linear --------------------


def test_naming_the_field_of_a_2_mb_header_line_is_linear() -> None:
    line = b"Content-Disposition: form-data" * 70_000  # 2 MB: minutes for the regex it replaced
    assert _in_time(lambda: disposition_name(line)) is None
    refusal = _in_time(lambda: _limit_error("header length", b"--B\r\n" + line, b"B", "resume"))
    assert str(refusal) == "the header of the form's part is longer than 16,384 bytes"
    # A body of boundary-like lines (not delimiters: no CRLF before them) searched the rest of
    # the window once from each of them.
    lines = b"x--B\r\n" * 350_000 + b"\r\n--B\r\nX-Long: " + b"a" * 20_000
    assert b"\r\nX-Long: aaa" in _in_time(lambda: _overlong_header(lines, b"B"))  # type: ignore[operator]


def test_the_field_name_is_still_found_where_the_line_has_one() -> None:
    header = b'Content-Type: text/plain\r\ncontent-disposition: form-data; filename="x"; name="cv"'
    assert disposition_name(header) == "cv"
    assert disposition_name(b'Content-Disposition: form-data; name="' + b"n" * 101 + b'"') is None
    assert disposition_name(b'Content-Disposition: attachment; name="cv"') is None


def test_over_long_part_headers_are_refused_while_health_answers(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    disposition = b"--HOLD\r\n" + b"Content-Disposition: form-data" * 35_000 + b"\r\n\r\nx\r\n"
    boundary_lines = (
        b'--HOLD\r\nContent-Disposition: form-data; name="resume"; filename="cv.pdf"\r\n\r\n'
        + b"x--HOLD\r\n" * 30_000
        + b'\r\n--HOLD\r\nContent-Disposition: form-data; name="notes"\r\nX-Long: '
        + b"a" * 20_000
        + b"\r\n\r\nx\r\n--HOLD--\r\n"
    )
    attacks = [_post("/api/v1/leads", disposition)] * 2 + [
        _post("/api/v1/leads", boundary_lines)
    ] * 4
    with ThreadPoolExecutor(len(attacks)) as pool:
        answers = [pool.submit(_raw, server.port, attack) for attack in attacks]
        health = httpx.get(f"{server.url}/health", timeout=15)  # ~40 s before: a blocked loop
        assert health.status_code == 200
        first, *_, last = (answer.result() for answer in answers)
    assert first.startswith(b"HTTP/1.1 400 "), first[:300]
    assert b"the header of the form's part is longer than 16,384 bytes" in first
    assert last.startswith(b"HTTP/1.1 400 "), last[:300]
    assert b"the header of the form's notes field is longer than 16,384 bytes" in last


# -- H2: a cap on submission bodies received at once ----------------------------------------------


def _fields(**values: str) -> bytes:
    return b"".join(
        b'--HOLD\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n'
        % (name.encode(), value.encode())
        for name, value in values.items()
    )


def _lead_body(resume_bytes: int = 2048) -> bytes:
    return (
        _fields(first_name="Jane", last_name="Doe", email="jane@example.com", consent="true")
        + b'--HOLD\r\nContent-Disposition: form-data; name="resume"; filename="cv.pdf"\r\n'
        b"Content-Type: application/pdf\r\n\r\n" + samples.pdf(resume_bytes) + b"\r\n--HOLD--\r\n"
    )


class Holder:
    """A submission whose body stops 2,000 bytes short of its end: it holds its place (and the
    bytes it sent) until told."""

    def __init__(
        self, port: int, client: str, path: str = "/api/v1/leads", resume_bytes: int = 2048
    ) -> None:
        self.request = _post(path, _lead_body(resume_bytes), client=client)
        self.half = len(self.request) - 2000
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.sendall(self.request[: self.half])

    def finish(self) -> bytes:
        self.sock.sendall(self.request[self.half :])
        return self.answer()

    def answer(self) -> bytes:
        answered = read_until_closed(self.sock)
        self.sock.close()
        return answered

    def disconnect(self) -> None:
        self.sock.close()


def _slots(server: Any) -> UploadSlots:
    return server.server.config.app.state.intake.uploads


def _json(answer: httpx.Response) -> tuple[int, str, str]:
    (error,) = answer.json()["errors"]
    return answer.status_code, answer.json()["code"], error["message"]


@contextlib.contextmanager
def _server(tmp_path: Path, **overrides: Any) -> Iterator[Any]:
    settings = make_settings(
        tmp_path, rate_limit="1000/minute", trusted_proxies="127.0.0.1", **overrides
    )
    with serve_in_thread(settings) as server:
        yield server


def test_uploads_in_flight_are_capped_per_client_and_by_their_bytes(tmp_path: Path) -> None:
    with _server(tmp_path, upload_memory_mb=1) as server:
        slots = _slots(server)
        port = int(server.url.rsplit(":", 1)[1])
        held = [Holder(port, A) for _ in range(4)]
        wait_until(lambda: slots.clients.get(A) == 4, 30, "four bodies from A in flight")
        with httpx.Client(base_url=server.url, timeout=30) as client:
            fifth = submit(client, headers={"X-Forwarded-For": A})
            assert _json(fifth) == (
                503,
                "too_many_uploads",
                "too many uploads at once from your address (at most 4); "
                "try again when one has finished",
            )
            assert fifth.headers["retry-after"] == "2"
            # Another client still gets through, and then sends 900 KB of the 1 MB in memory.
            assert submit(client, headers={"X-Forwarded-For": B}).status_code == 201
            held.append(Holder(port, B, resume_bytes=900_000))
            wait_until(lambda: slots.held_bytes > 890_000, 30, "900 KB in flight")
            too_much = submit(client, resume=samples.pdf(200_000), headers={"X-Forwarded-For": C})
            assert _json(too_much) == (
                503,
                "too_many_uploads",
                "the server is receiving too much at once (over 1 MB); try again shortly",
            )
            page = client.post(  # the HTML form gets its page, with the same words
                "/",
                data={"first_name": "Jane"},
                files={"resume": ("cv.pdf", samples.pdf(200_000), "application/pdf")},
                headers={"X-Forwarded-For": C},
            )
            assert page.status_code == 503 and page.headers["retry-after"] == "2"
            assert "the server is receiving too much at once" in page.text
            # Every way a body's reading ends gives its place and its bytes back.
            assert held[0].finish().startswith(b"HTTP/1.1 201 ")
            held[1].sock.sendall(b"x" * (len(held[1].request) - held[1].half))  # no last boundary
            assert held[1].answer().startswith(b"HTTP/1.1 400 ")
            for holder in held[2:]:
                holder.disconnect()
            wait_until(lambda: slots.total == 0 and not slots.clients, 30, "every place back")
            assert slots.held_bytes == 0
            assert submit(client, headers={"X-Forwarded-For": A}).status_code == 201
        assert slots.total == 0 and not slots.clients and slots.held_bytes == 0


def test_idle_bodies_from_many_addresses_keep_no_one_out(tmp_path: Path) -> None:
    """An outsider's second look: 16 addresses x 4 idle bodies filled a cap of 64 bodies and
    every prospect got 503 for as long as they kept it up, at no cost. Bytes must now be sent
    to be held."""
    with _server(tmp_path) as server:
        slots = _slots(server)
        port = int(server.url.rsplit(":", 1)[1])
        head = _post("/api/v1/leads", _lead_body())[: -len(_lead_body())]
        idle = []
        for n in range(100):
            request = head.replace(b"Connection: close", b"X-Forwarded-For: 2001:db8:%x::1" % n)
            sock = socket.create_connection(("127.0.0.1", port), timeout=60)
            sock.sendall(request + b"--HOLD\r\n")
            idle.append(sock)
        try:
            wait_until(lambda: slots.total == 100, 30, "a hundred idle bodies")
            with httpx.Client(base_url=server.url, timeout=30) as client:
                assert submit(client, headers={"X-Forwarded-For": A}).status_code == 201
        finally:
            for sock in idle:
                sock.close()
        wait_until(lambda: slots.total == 0 and slots.held_bytes == 0, 30, "every place back")


def test_a_client_that_leaves_mid_body_is_no_error_of_ours(
    tmp_path: Path, make_server: Any
) -> None:
    """Each one was logged at ERROR as an internal error and counted a 500: an outsider could
    fill the error log at will."""
    server = make_server(make_settings(tmp_path))
    Holder(server.port, A).disconnect()
    wait_until(lambda: "request ended early" in server.log.read_text(), 30, "the early end logged")
    log = server.log.read_text()
    assert " ERROR " not in log and " 500 " not in log, log[-2000:]
    assert "POST /api/v1/leads 400 " in log


def test_a_body_that_times_out_gives_its_slot_back(tmp_path: Path) -> None:
    with _server(tmp_path, body_timeout_seconds=0.5) as server:
        slots = _slots(server)
        holder = Holder(int(server.url.rsplit(":", 1)[1]), A, path="/")
        wait_until(lambda: slots.total == 1, 30, "the body in flight")
        assert holder.answer().startswith(b"HTTP/1.1 408 ")
        assert slots.total == 0 and not slots.clients


def test_upload_memory_must_be_positive(tmp_path: Path) -> None:
    from leadctl.settings import SettingsError

    with pytest.raises(SettingsError, match="LEADS_UPLOAD_MEMORY_MB must be at least 1, not 0"):
        Settings.from_env({"LEADS_UPLOAD_MEMORY_MB": "0"})


# -- H3: the request head's limit counts its first chunk ------------------------------------------


def _head_in_pieces(port: int, first: bytes, *pieces: bytes) -> bytes:
    """Send `first`, then each piece once the server has read all that came before (so each is
    a chunk of its own: the request head is counted chunk by chunk)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(first)
        for piece in pieces:
            read = functools.partial(_all_read, port, sock.getsockname()[1])
            wait_until(read, 10, "the server to read what was sent")
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(piece)
        return read_until_closed(sock)


def _all_read(server_port: int, client_port: int) -> bool:
    """Whether the connection's bytes have all left the client and been read by the server, as
    /proc/net/tcp shows its two ends' queues (tx_queue:rx_queue, in hex)."""
    queues = {}
    for row in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, _state, queue = row.split()[1:5]
        queues[(int(local.split(":")[1], 16), int(remote.split(":")[1], 16))] = queue.split(":")
    client, server = queues.get((client_port, server_port)), queues.get((server_port, client_port))
    return (
        client is not None and server is not None and int(client[0], 16) == 0 == int(server[1], 16)
    )


def test_a_head_sent_in_two_halves_of_31_kib_is_refused(tmp_path: Path, make_server: Any) -> None:
    server = make_server(make_settings(tmp_path))
    answer = _head_in_pieces(
        server.port,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * (31 * 1024) + b"\r\n",
        b"X-B: " + b"b" * (31 * 1024) + b"\r\n",
        b"X-C: c\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"larger than 32 KiB" in answer


def test_the_second_head_on_a_kept_alive_connection_is_counted_too(
    tmp_path: Path, make_server: Any
) -> None:
    server = make_server(make_settings(tmp_path))
    small = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    answer = _head_in_pieces(
        server.port,
        small,
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: " + b"a" * (31 * 1024) + b"\r\n",
        b"X-B: " + b"b" * (31 * 1024) + b"\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 431 " in answer, answer[-400:]
    # Kept-alive requests within the limit, and pipelined ones, are all answered.
    three = _raw(
        server.port, small * 2 + small.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    )
    assert three.count(b"HTTP/1.1 200 ") == 3, three


def test_requests_pipelined_after_a_body_or_by_the_hundred_are_all_answered(
    tmp_path: Path, make_server: Any
) -> None:
    """A next request beginning in the same read as a large body's end, or 1,200 small ones in
    one write: none is taken for an over-long head (an outsider's second look found a lead stored
    and answered 431, and CI a health check after a 413)."""
    server = make_server(make_settings(tmp_path))
    resume = b"Jane Doe, contract law. " * 4600  # 110 KB of text, one write with what follows
    body = _fields(first_name="Pipe", last_name="Lined", email="pipe@example.com", consent="true")
    body += (
        b'--HOLD\r\nContent-Disposition: form-data; name="resume"; filename="cv.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n" + resume + b"\r\n--HOLD--\r\n"
    )
    post = _post("/api/v1/leads", body).replace(b"Connection: close\r\n", b"")
    last = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    answer = _raw(server.port, post + last)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
    assert answer.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 200 " in answer, answer[-300:]
    many = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 1200 + last
    assert _raw(server.port, many).count(b"HTTP/1.1 200 ") == 1201


# -- H4: JSON nested past the decoder's depth is the client's 400 ---------------------------------


DEEP = b'{"text":' + b"[" * 1000 + b"]" * 1000 + b"}"


def test_deeply_nested_json_gets_a_400_on_every_route(settings: Settings) -> None:
    with TestClient(create_app(settings, run_worker=False)) as client:
        token = attorneys.add("Ann Lee", "ann@firm.example", "admin")[1].secret
        staff = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for path in (
            "/api/v1/leads/1/notes",
            "/api/v1/conflicts",
            "/api/v1/leads/1/reach-out",
            "/api/v1/leads/1/assign",
        ):
            answer = client.post(path, content=DEEP, headers=staff)
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json() == {
                "code": "bad_request",
                "errors": [{"field": None, "message": "the JSON body is nested too deeply"}],
            }
            # Bytes that are not UTF-8 inside a string (an outsider's second look: a 500).
            for field in ("note", "text", "attorney", "names"):
                answer = client.post(
                    path, content=b'{"%s":"\xff\xfe"}' % field.encode(), headers=staff
                )
                assert answer.status_code == 400, (path, field, answer.text)
                assert answer.json()["errors"][0]["message"] == "the JSON body is not valid UTF-8"
        # The public routes take no JSON: a clear 4xx, never a 500.
        public = {"Content-Type": "application/json"}
        for path, status in (("/api/v1/leads", 415), ("/", 415), ("/api/v1/conflicts", 401)):
            answer = client.post(path, content=DEEP, headers=public)
            assert answer.status_code == status, (path, answer.text)
        assert json.loads(client.post("/api/v1/leads", content=DEEP, headers=public).text)
    database.obj.close()
