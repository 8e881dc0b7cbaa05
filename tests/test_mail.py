"""Email through the outbox to a real SMTP server (aiosmtpd on 127.0.0.1), on SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from leadctl import delivery, outbox, submissions
from leadctl.errors import LeadctlError
from leadctl.mailer import FileSender, SmtpSender, build_message, make_sender
from leadctl.messages import Composed
from leadctl.models import Event, OutboxMessage
from leadctl.resumes import check_resume
from leadctl.settings import Settings
from leadctl.states import MESSAGE_TRANSITIONS, MessageAction, MessageStatus
from leadctl.validation import check_prospect
from tests import samples
from tests.conftest import SmtpSink, at_once, smtp_settings, wait_until

pytestmark = pytest.mark.postgres


def _lead(
    settings: Settings, first: str = "Zoë", last: str = "Ñúñez", email: str = "zoe@example.com"
) -> submissions.Submitted:
    return submissions.submit(
        check_prospect(first, last, email),
        check_resume("Zoë CV.pdf", samples.pdf(4000), settings.max_resume_bytes),
        settings,
    )


def _parts(msg: EmailMessage) -> tuple[str, str]:
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def test_both_messages_arrive_with_both_parts_and_non_ascii_intact(
    core: Settings, smtp_sink: SmtpSink
) -> None:
    from leadctl import attorneys

    attorneys.add("Ann Lee", "ann@firm.example")
    submitted = _lead(core, first="李", last="雷")
    s = smtp_settings(core, smtp_sink.port)
    sender = make_sender(s)
    result = outbox.drain(sender, s)
    sender.close()
    assert (result.sent, result.failed) == (2, 0)
    received = smtp_sink.wait_for(2)
    by_to = {rcpts[0]: msg for rcpts, msg in received}
    assert set(by_to) == {"zoe@example.com", "ann@firm.example"}
    ref = submitted.lead.reference
    confirmation, notification = by_to["zoe@example.com"], by_to["ann@firm.example"]
    assert confirmation["Subject"] == f"We received your details (reference {ref})"
    assert notification["Subject"] == f"New lead {ref}: 李 雷"
    text, html = _parts(confirmation)
    assert "Hello," in text and ref in text and "What happens next" in text
    assert "李" not in text + html  # nothing the prospect typed is echoed to the address
    assert ref in html
    text, html = _parts(notification)
    for expected in (
        "李 雷",
        "zoe@example.com",
        ref,
        "Zoë CV.pdf",
        "4,000 bytes",
        f"leadctl show {submitted.lead.id}",
        f"leadctl open {submitted.lead.id}",
    ):
        assert expected in text
    assert "Zoë CV.pdf" in html
    rows = list(OutboxMessage.select().order_by(OutboxMessage.id))
    assert [r.status for r in rows] == ["sent", "sent"]
    assert {m["Message-ID"] for _, m in received} == {r.message_id for r in rows}
    kinds = [
        e.kind for e in Event.select().where(Event.lead == submitted.lead.id).order_by(Event.id)
    ]
    assert kinds.count("email_sent") == 2


def test_refused_recipient_retries_then_dies_and_the_other_is_delivered(
    core: Settings, smtp_sink: SmtpSink
) -> None:
    submitted = _lead(core, email="nobody@example.com")
    smtp_sink.refuse.add("nobody@example.com")
    s = smtp_settings(core, smtp_sink.port, mail_max_attempts=3, mail_retry_seconds=0.01)
    sender = make_sender(s)

    def settled() -> bool:
        outbox.drain(sender, s)
        unsettled = OutboxMessage.status.in_(["pending", "sending"])
        return OutboxMessage.select().where(unsettled).count() == 0

    wait_until(settled, 10, "both messages to be sent or dead")
    sender.close()
    confirmation = OutboxMessage.get(OutboxMessage.purpose == "confirmation")
    notification = OutboxMessage.get(OutboxMessage.purpose == "notification")
    assert (confirmation.status, confirmation.attempts) == ("dead", 3)
    assert "550" in (confirmation.last_error or "")
    assert notification.status == "sent"
    assert [rcpts for rcpts, _ in smtp_sink.received] == [[core.intake_email]]
    failed = Event.select().where(
        (Event.lead == submitted.lead.id) & (Event.kind == "email_failed")
    )
    assert failed.count() == 3
    assert failed.order_by(Event.id.desc()).first().details["dead"] is True


def test_message_id_is_kept_across_retries(core: Settings, smtp_sink: SmtpSink) -> None:
    _lead(core)
    row = OutboxMessage.get(OutboxMessage.purpose == "confirmation")
    smtp_sink.refuse.add("zoe@example.com")
    s = smtp_settings(core, smtp_sink.port, mail_retry_seconds=0.5)
    sender = make_sender(s)
    outbox.drain(sender, s)  # one failed attempt; the retry is due in 0.5 s
    smtp_sink.refuse.clear()
    wait_until(lambda: outbox.drain(sender, s).sent, 10, "the retry to come due and go out")
    sender.close()
    delivered = [m for rcpts, m in smtp_sink.received if rcpts == ["zoe@example.com"]]
    assert len(delivered) == 1
    assert delivered[0]["Message-ID"] == row.message_id
    assert OutboxMessage.get_by_id(row.id).attempts == 2


def test_the_outbox_moves_a_message_only_as_its_table_allows(
    core: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lead(core)
    row = OutboxMessage.get(OutboxMessage.purpose == "confirmation")
    claimed = [m for m in outbox.claim(10, timedelta(minutes=1)) if m.id == row.id]
    assert OutboxMessage.get_by_id(row.id).status == MessageStatus.SENDING
    outbox.release(claimed)
    outbox.release(claimed)  # released already: pending is not a status RELEASE starts from
    assert (OutboxMessage.get_by_id(row.id).status, OutboxMessage.get_by_id(row.id).attempts) == (
        MessageStatus.PENDING,
        0,
    )
    OutboxMessage.update(status=MessageStatus.SENT.value).where(
        OutboxMessage.id == row.id
    ).execute()
    assert outbox.retry([row.id], dead=False) == 0  # never a second email
    OutboxMessage.update(status=MessageStatus.DEAD.value).where(
        OutboxMessage.id == row.id
    ).execute()
    only_pending = (frozenset({MessageStatus.PENDING}), MessageStatus.PENDING)
    with monkeypatch.context() as patch:  # the table decides, not a list inside `retry`
        patch.setitem(MESSAGE_TRANSITIONS, MessageAction.RETRY, only_pending)
        assert outbox.retry([row.id], dead=False) == 0
    assert outbox.retry([row.id], dead=False) == 1
    assert OutboxMessage.get_by_id(row.id).status == MessageStatus.PENDING


def test_two_workers_deliver_each_message_exactly_once(core: Settings, smtp_sink: SmtpSink) -> None:
    for i in range(15):
        _lead(core, email=f"p{i}@example.com")
    s = smtp_settings(core, smtp_sink.port)

    def worker() -> None:
        sender = make_sender(s)
        try:
            outbox.drain(sender, s)
        finally:
            sender.close()

    at_once(worker, 2, timeout=30)  # raises what any worker raised
    received = smtp_sink.wait_for(30, timeout=5)
    ids = [m["Message-ID"] for _, m in received]
    assert len(ids) == 30
    assert len(set(ids)) == 30
    assert OutboxMessage.select().where(OutboxMessage.status == "sent").count() == 30


def test_a_crashed_send_is_retried_after_its_lease(core: Settings, smtp_sink: SmtpSink) -> None:
    _lead(core)
    s = smtp_settings(core, smtp_sink.port)
    claimed = outbox.claim(10, outbox.lease_for(s))
    assert len(claimed) == 2  # the worker "dies" here, holding both
    assert outbox.claim(10, outbox.lease_for(s)) == []
    after_lease = max(m.lease_until for m in claimed) + timedelta(seconds=1)
    retaken = outbox.claim(10, outbox.lease_for(s), now=after_lease)
    assert sorted(m.id for m in retaken) == sorted(m.id for m in claimed)
    assert all(m.attempts == 2 for m in retaken)


def test_prospect_text_that_is_a_file_path_is_never_attached(
    sqlite_core: Settings, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    _lead(sqlite_core, first=str(secret)[:100], last="/etc/passwd")
    s = smtp_settings(sqlite_core, smtp_sink.port)
    sender = make_sender(s)
    outbox.drain(sender, s)
    sender.close()
    for _, msg in smtp_sink.wait_for(2):
        assert not any(part.get_filename() for part in msg.walk())
        assert "TOP SECRET" not in msg.as_string()
        assert "root:" not in msg.as_string()


def test_headers_cannot_be_injected() -> None:
    evil = Composed(
        "victim@example.com", "Hello\r\nBcc: everyone@example.com", "body", "<p>body</p>"
    )
    with pytest.raises(ValueError):
        build_message(evil, "leads@localhost", "<x@localhost>").as_bytes()


def test_smtp_login_uses_the_password_from_the_keyring(
    sqlite_core: Settings, memory_keyring: object, tmp_path: Path
) -> None:
    from leadctl.secrets import set_secret, smtp_key
    from tests.conftest import free_port

    sink = SmtpSink(free_port(), login=("mailer", "s3cret-pass"))
    sink.start()
    try:
        _lead(sqlite_core)
        s = smtp_settings(sqlite_core, sink.port).replace(smtp_user="mailer")
        set_secret(smtp_key("mailer", "127.0.0.1"), "s3cret-pass")
        sender = make_sender(s)
        result = outbox.drain(sender, s)
        sender.close()
        assert result.sent == 2, result.errors
        assert len(sink.wait_for(2)) == 2
        bad = SmtpSender(s, "wrong-password")
        _lead(sqlite_core, email="x@example.com")
        failed = outbox.deliver_due(bad, s)
        bad.close()
        assert failed.failed == 2 and "535" in failed.errors[0]
        assert "wrong-password" not in " ".join(failed.errors)
    finally:
        sink.stop()


def test_without_a_keyring_the_error_names_the_environment_variable(
    sqlite_core: Settings, no_keyring: None
) -> None:
    s = sqlite_core.replace(mail_backend="smtp", smtp_user="mailer")
    with pytest.raises(LeadctlError, match="LEADS_SMTP_PASSWORD"):
        make_sender(s)
    assert isinstance(make_sender(s.replace(smtp_password="from-env")), SmtpSender)


def test_file_backend_writes_one_rfc5322_file_per_message(sqlite_core: Settings) -> None:
    from email import message_from_bytes, policy

    submitted = _lead(sqlite_core)
    sender = FileSender(sqlite_core.mail_dir)
    assert outbox.drain(sender, sqlite_core).sent == 2
    assert outbox.drain(sender, sqlite_core).sent == 0
    files = sorted(Path(sqlite_core.mail_dir).glob("*.eml"))
    assert len(files) == 2
    msgs = [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]
    assert all(m["Message-ID"] and m["Date"] and m["From"] == "leads@localhost" for m in msgs)
    assert any(submitted.lead.reference in _parts(m)[0] for m in msgs)


def test_the_worker_does_its_chores_when_idle(sqlite_core: Settings) -> None:
    import threading as _threading

    done = _threading.Event()
    worker = delivery.DeliveryWorker(sqlite_core, make_sender, poll_seconds=0.05, chores=[done.set])
    worker.start()
    try:
        assert done.wait(5)
    finally:
        worker.stop()
    assert not worker.is_alive()


def test_a_worker_in_its_own_process_delivers_and_stops(sqlite_core: Settings) -> None:
    worker = delivery.DeliveryWorker(sqlite_core, make_sender, separate_process=True)
    worker.start()
    try:
        _lead(sqlite_core)
        worker.wake()
        wait_until(  # a spawned Python imports leadctl first
            lambda: len(list(Path(sqlite_core.mail_dir).glob("*.eml"))) >= 2,
            20,
            "the worker process to deliver both messages",
        )
    finally:
        worker.stop()
    assert not worker.is_alive()
    statuses = [m.status for m in OutboxMessage.select()]
    assert statuses == [MessageStatus.SENT, MessageStatus.SENT]


def test_a_worker_process_ends_when_its_server_is_killed(tmp_path: Path) -> None:
    """kill -9 of the server leaves no delivery process behind."""
    import os
    import subprocess
    import sys

    script = (
        "import os, sys\n"
        "from leadctl import db, delivery, schema\n"
        "from leadctl.mailer import make_sender\n"
        "from tests.conftest import make_settings\n"
        "from pathlib import Path\n"
        "s = make_settings(Path(sys.argv[1]))\n"
        "db.bind(s.database_url); schema.ensure_schema()\n"
        "w = delivery.DeliveryWorker(s, make_sender, poll_seconds=0.2, separate_process=True)\n"
        "w.start(); print(w._runner.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, cwd=root
    )
    child = int(done.stdout.split()[0])

    def ended() -> bool:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            return Path(f"/proc/{child}/stat").read_text().split()[2] in ("Z", "X")
        return True

    wait_until(ended, 20, f"delivery process {child} to end with its server")
    assert done.returncode == -9 and os.getpid() != child
