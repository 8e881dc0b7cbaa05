"""The server's delivery worker against a real SMTP server: outages, crashes, and restarts."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import samples
from tests.conftest import SmtpSink, free_port, make_settings, outbox_statuses, wait_until

pytestmark = pytest.mark.e2e


def _smtp_server_settings(tmp_path: Path, port: int) -> Any:
    return make_settings(
        tmp_path,
        mail_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_timeout=2.0,
        mail_retry_seconds=0.2,
    )


def _post(url: str, i: int) -> httpx.Response:
    return httpx.post(
        f"{url}/api/v1/leads",
        data={
            "first_name": "Zoë",
            "last_name": f"Ñúñez{i}",
            "email": f"p{i}@example.com",
            "consent": "true",
        },
        files={"resume": ("cv.pdf", samples.pdf(), "application/pdf")},
        timeout=10,
    )


def _failed_attempts(tmp_path: Path) -> int:
    """How many delivery attempts have failed, as the server recorded them."""
    with contextlib.closing(sqlite3.connect(tmp_path / "leads.db")) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM event WHERE kind = 'email_failed'").fetchone()
    return int(count)


def test_new_mail_leaves_within_two_seconds(
    tmp_path: Path, make_server: Any, smtp_sink: SmtpSink
) -> None:
    server = make_server(_smtp_server_settings(tmp_path, smtp_sink.port))
    started = time.monotonic()
    reference = _post(server.url, 1).json()["reference"]
    received = smtp_sink.wait_for(2, timeout=5)
    assert time.monotonic() - started < 2.0
    assert len(received) == 2
    assert all(reference in m["Subject"] for _, m in received)


def test_smtp_down_at_submission_then_up(tmp_path: Path, make_server: Any) -> None:
    port = free_port()
    server = make_server(_smtp_server_settings(tmp_path, port))
    started = time.monotonic()
    response = _post(server.url, 1)
    assert response.status_code == 201
    assert time.monotonic() - started < 1.0  # SMTP being down never slows intake
    wait_until(lambda: _failed_attempts(tmp_path) >= 2, 15, "failed attempts while SMTP is down")
    sink = SmtpSink(port)
    sink.start()
    try:
        received = sink.wait_for(2, timeout=15)
        # Once both are recorded as sent none can go out again: nothing more should arrive.
        wait_until(lambda: outbox_statuses(tmp_path) == ["sent"] * 2, 15, "both to be recorded")
        assert len(sink.received) == 2
        assert sorted(r[0] for r, _ in received) == ["intake@localhost", "p1@example.com"]
    finally:
        sink.stop()


def test_messages_pending_at_a_kill_are_delivered_after_restart(
    tmp_path: Path, make_server: Any
) -> None:
    port = free_port()
    settings = _smtp_server_settings(tmp_path, port)
    server = make_server(settings)
    references = [_post(server.url, i).json()["reference"] for i in range(5)]
    server.stop(kill=True)  # SIGKILL: no shutdown, messages pending or mid-claim
    sink = SmtpSink(port)
    sink.start()
    try:
        server.start()
        received = sink.wait_for(10, timeout=30)
        wait_until(lambda: outbox_statuses(tmp_path) == ["sent"] * 10, 15, "all to be recorded")
        ids = [m["Message-ID"] for _, m in sink.received]
        assert len(received) == 10 and len(set(ids)) == 10
        for ref in references:
            assert sum(ref in m["Subject"] for _, m in sink.received) == 2
    finally:
        sink.stop()


# -- LEADS_ATTACH_RESUME ------------------------------------------------------------------------


def _attachments(msg: Any) -> list[tuple[str, str, bytes]]:
    return [
        (part.get_filename(), part.get_content_type(), part.get_content())
        for part in msg.iter_attachments()
    ]


def test_the_attorneys_notification_carries_the_resume_when_asked(
    tmp_path: Path, make_server: Any, smtp_sink: SmtpSink
) -> None:
    settings = _smtp_server_settings(tmp_path, smtp_sink.port).replace(attach_resume=True)
    server = make_server(settings)
    resume = samples.pdf(5000)
    answer = httpx.post(
        f"{server.url}/api/v1/leads",
        data={
            "first_name": "Zoë",
            "last_name": "Ñúñez",
            "email": "zoe@example.com",
            "consent": "true",
        },
        files={"resume": ("Zoë CV\r\nBcc: x@evil.example.pdf", resume, "application/pdf")},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    received = {to[0]: msg for to, msg in smtp_sink.wait_for(2, timeout=10)}
    notification, confirmation = received["intake@localhost"], received["zoe@example.com"]
    ((name, kind, data),) = _attachments(notification)
    assert data == resume and kind == "application/pdf"
    assert "\n" not in name and "\r" not in name and name.endswith(".pdf")
    assert notification["Bcc"] is None
    assert _attachments(confirmation) == []  # the prospect's own file never goes back out


def test_no_resume_is_attached_by_default(
    tmp_path: Path, make_server: Any, smtp_sink: SmtpSink
) -> None:
    server = make_server(_smtp_server_settings(tmp_path, smtp_sink.port))
    assert _post(server.url, 1).status_code == 201
    assert all(_attachments(msg) == [] for _, msg in smtp_sink.wait_for(2, timeout=10))


def test_an_erased_lead_or_another_message_attaches_nothing(tmp_path: Path) -> None:
    from leadctl import db, erasure, outbox, submissions
    from leadctl.models import OutboxMessage
    from leadctl.resumes import check_resume
    from leadctl.schema import ensure_schema
    from leadctl.validation import check_prospect

    s = make_settings(tmp_path, attach_resume=True)
    db.bind(s.database_url)
    ensure_schema()
    try:
        resume = check_resume("cv.pdf", samples.pdf(), s.max_resume_bytes)
        lead = submissions.submit(check_prospect("A", "B", "a@example.com"), resume, s).lead
        rows = {m.purpose: m for m in OutboxMessage.select().where(OutboxMessage.lead == lead.id)}
        assert outbox.attachments_of(rows["notification"], s) == [
            ("cv.pdf", "application/pdf", samples.pdf())
        ]
        assert outbox.attachments_of(rows["confirmation"], s) == []
        assert outbox.attachments_of(rows["notification"], s.replace(attach_resume=False)) == []
        erasure.erase([lead.id], "ann@firm.example", "asked")
        assert outbox.attachments_of(rows["notification"], s) == []
    finally:
        db.close_connection()
